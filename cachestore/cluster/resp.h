// RESP2 for the Redis Cluster adapter: request encoding and a reply reader over hiredis's parser.
// Pure functions over bytes, no sockets, so both can be tested (and fuzzed) alone.
//
// Request wire format (a RESP array of bulk strings), per command of N arguments:
//   "*" N "\r\n", then per argument "$" len "\r\n" <len bytes> "\r\n".
// Thread safety: ReplyReader is a plain object for one thread; the functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cachestore/cluster/redis_cluster.h"

struct redisReader;

namespace strata::cachestore::cluster {

// Arguments of this many bytes or more are not copied into the write buffer: the writer sends
// them from the caller's memory (a gather write), so a 1 MiB value is copied once, by the kernel.
inline constexpr size_t kZeroCopyMinBytes = 16 * 1024;

// An argument left out of the encoded bytes: it belongs at `offset` of the buffer.
struct ExternalPiece {
  size_t offset;
  std::string_view bytes;
};

// Appends the encoding of `args` to `out`, with `tail` as the last argument's second part (sent
// right after it, in one bulk string: a record's header and its payload need not be joined in
// memory first). Parts of kZeroCopyMinBytes or more are listed in `external` (in order) instead of
// copied. With `external` null everything is copied.
void AppendCommand(std::span<const std::string_view> args, std::string_view tail, std::string& out,
                   std::vector<ExternalPiece>* external);
inline void AppendCommand(std::span<const std::string_view> args, std::string& out,
                          std::vector<ExternalPiece>* external) {
  AppendCommand(args, {}, out, external);
}

// The whole encoding of one command as one string (tests, small internal commands).
std::string EncodeCommand(std::span<const std::string_view> args);

// Incremental RESP2 reply parser: feed bytes as they arrive, take complete replies in order.
// Top-level bulk strings (what GET answers) are read here, straight into the reply's own string,
// and the caller may even receive a large one there from the socket (BulkWindow, Filled); hiredis
// parses every other reply. hiredis would copy a value twice more (into its buffer, then into
// the reply): for values of 100 KB and up those copies cost as much as the network itself.
class ReplyReader {
 public:
  ReplyReader();
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  Status Feed(const char* data, size_t size);
  // The next complete reply; nullopt when more bytes are needed; a Corruption status on a
  // protocol error (the stream cannot be used any further: Reset it with its connection).
  Result<std::optional<RedisReply>> Next();
  // Drops buffered bytes and any partial reply (a new connection starts clean).
  void Reset();

  // While a large bulk string is arriving: the part of its bytes still to come (empty otherwise).
  // The caller may write received bytes there and report them with Filled, instead of Feed.
  std::span<char> BulkWindow();
  void Filled(size_t n);

 private:
  bool HiredisIdle() const;
  void FeedHiredis(const char* data, size_t size);

  redisReader* reader_ = nullptr;
  std::deque<RedisReply> ready_;  // complete replies, in order
  Status error_;                  // a protocol error, returned by Next after the replies before it
  std::optional<RedisReply> bulk_;  // the bulk string in progress
  size_t bulk_filled_ = 0;
  size_t crlf_left_ = 0;
};

// CRC16/XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster hashes keys with.
uint16_t Crc16(std::string_view bytes);

}  // namespace strata::cachestore::cluster
