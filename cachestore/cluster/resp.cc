#include "cachestore/cluster/resp.h"

#include <fmt/format.h>
#include <hiredis/read.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <new>

namespace strata::cachestore::cluster {

namespace {

// hiredis builds replies through these callbacks: they make RedisReply values directly, so no
// hiredis reply objects are allocated and converted. A child is built in place inside its
// parent's `elements` (sized by createArray, never resized afterwards, so the pointers handed
// back to hiredis stay valid); only the top-level reply is heap-allocated and owned by hiredis
// until redisReaderGetReply hands it over (or freeObject, on an error, deletes it).
RedisReply* Place(const redisReadTask* task) {
  if (task->parent == nullptr) return new (std::nothrow) RedisReply();
  auto* parent = static_cast<RedisReply*>(task->parent->obj);
  return &parent->elements[static_cast<size_t>(task->idx)];
}

void* CreateString(const redisReadTask* task, char* str, size_t len) {
  RedisReply* r = Place(task);
  if (r == nullptr) return nullptr;
  switch (task->type) {
    case REDIS_REPLY_ERROR:
      r->type = RedisReply::Type::kError;
      break;
    case REDIS_REPLY_STATUS:
      r->type = RedisReply::Type::kStatus;
      break;
    default:
      r->type = RedisReply::Type::kString;
  }
  r->str.assign(str, len);
  return r;
}

void* CreateArray(const redisReadTask* task, int elements) {
  RedisReply* r = Place(task);
  if (r == nullptr) return nullptr;
  r->type = RedisReply::Type::kArray;
  r->elements.resize(static_cast<size_t>(elements));
  return r;
}

void* CreateInteger(const redisReadTask* task, long long value) {
  RedisReply* r = Place(task);
  if (r == nullptr) return nullptr;
  r->type = RedisReply::Type::kInteger;
  r->integer = value;
  return r;
}

void* CreateNil(const redisReadTask* task) {
  RedisReply* r = Place(task);
  if (r == nullptr) return nullptr;
  r->type = RedisReply::Type::kNil;
  return r;
}

void FreeObject(void* reply) { delete static_cast<RedisReply*>(reply); }

redisReplyObjectFunctions kFunctions = {CreateString, CreateArray, CreateInteger, CreateNil,
                                        FreeObject};

// hiredis frees its buffer whenever it is empty and has more than maxbuf bytes spare; a reader
// that takes 1 MiB values would then reallocate for every value. Keep up to this much.
constexpr size_t kReaderMaxBuf = 4 << 20;

// The largest bulk string Redis sends (its proto-max-bulk-len default, 512 MiB): a length above
// it is a broken stream, not a reason to allocate.
constexpr int64_t kMaxBulkBytes = int64_t{512} << 20;

void AppendHeader(char type, size_t n, std::string& out) {
  std::array<char, 24> digits;
  const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), n);
  out.push_back(type);
  out.append(digits.data(), end);
  out.append("\r\n", 2);
}

}  // namespace

void AppendCommand(std::span<const std::string_view> args, std::string_view tail, std::string& out,
                   std::vector<ExternalPiece>* external) {
  auto piece = [&](std::string_view part) {
    if (external != nullptr && part.size() >= kZeroCopyMinBytes) {
      external->push_back(ExternalPiece{out.size(), part});
    } else {
      out.append(part);
    }
  };
  AppendHeader('*', args.size(), out);
  for (size_t i = 0; i < args.size(); ++i) {
    const bool last = i + 1 == args.size();
    AppendHeader('$', args[i].size() + (last ? tail.size() : 0), out);
    piece(args[i]);
    if (last && !tail.empty()) piece(tail);
    out.append("\r\n", 2);
  }
}

std::string EncodeCommand(std::span<const std::string_view> args) {
  std::string out;
  AppendCommand(args, out, nullptr);
  return out;
}

ReplyReader::ReplyReader() { Reset(); }

ReplyReader::~ReplyReader() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

void ReplyReader::Reset() {
  if (reader_ != nullptr) redisReaderFree(reader_);
  reader_ = redisReaderCreateWithFunctions(&kFunctions);
  if (reader_ != nullptr) reader_->maxbuf = kReaderMaxBuf;
  ready_.clear();
  error_ = Status::Ok();
  bulk_.reset();
  bulk_filled_ = crlf_left_ = 0;
}

// hiredis holds no bytes and no partial reply: the next byte starts a reply. (hiredis 0.14's
// reader is a public struct; after a reply is taken, the next redisReaderGetReply leaves an
// empty task at rstack[0], type -1, when no byte of the next reply has come.)
bool ReplyReader::HiredisIdle() const {
  return reader_->pos == reader_->len &&
         (reader_->ridx == -1 || (reader_->ridx == 0 && reader_->rstack[0].type < 0));
}

void ReplyReader::FeedHiredis(const char* data, size_t size) {
  if (redisReaderFeed(reader_, data, size) != REDIS_OK) {
    error_ = Status::Corruption(std::string("RESP reader: ") + reader_->errstr);
    return;
  }
  for (;;) {
    void* obj = nullptr;
    if (redisReaderGetReply(reader_, &obj) != REDIS_OK) {
      error_ = Status::Corruption(std::string("RESP reader: ") + reader_->errstr);
      return;
    }
    if (obj == nullptr) return;
    auto* reply = static_cast<RedisReply*>(obj);
    ready_.push_back(std::move(*reply));
    delete reply;
  }
}

Status ReplyReader::Feed(const char* data, size_t size) {
  if (reader_ == nullptr) return Status::Internal("RESP reader: out of memory");
  while (size > 0 && error_.ok()) {
    if (bulk_) {
      if (auto window = BulkWindow(); !window.empty()) {
        const size_t n = std::min(window.size(), size);
        std::memcpy(window.data(), data, n);
        Filled(n);
        data += n, size -= n;
        continue;
      }
      if (*data != (crlf_left_ == 2 ? '\r' : '\n')) {
        error_ = Status::Corruption("RESP reader: a bulk string not followed by CRLF");
        break;
      }
      ++data, --size;
      if (--crlf_left_ == 0) {
        ready_.push_back(std::move(*bulk_));
        bulk_.reset();
      }
      continue;
    }
    if (!HiredisIdle()) {  // the rest of a reply hiredis has begun, and what follows it
      FeedHiredis(data, size);
      break;
    }
    // At a reply boundary. Its first line, if whole in this chunk:
    const auto* eol = static_cast<const char*>(std::memchr(data, '\n', size));
    if (eol == nullptr || eol == data || eol[-1] != '\r') {
      FeedHiredis(data, size);
      break;
    }
    const size_t line = static_cast<size_t>(eol - data) + 1;
    if (*data == '$') {  // a bulk string: read here
      int64_t len = 0;
      const auto [end, ec] = std::from_chars(data + 1, eol - 1, len);
      if (ec == std::errc() && end == eol - 1 && len > kMaxBulkBytes) {
        error_ = Status::Corruption(
            fmt::format("RESP reader: a bulk string of {} bytes (Redis's own limit is {})", len,
                        kMaxBulkBytes));
        break;
      }
      if (ec == std::errc() && end == eol - 1 && len >= -1) {
        bulk_.emplace();
        if (len == -1) {
          ready_.push_back(std::move(*bulk_));  // nil: type kNil, no bytes, no CRLF
          bulk_.reset();
        } else {
          bulk_->type = RedisReply::Type::kString;
          bulk_->str.resize(static_cast<size_t>(len));
          bulk_filled_ = 0;
          crlf_left_ = 2;
        }
        data += line, size -= line;
        continue;
      }
    } else if (*data == '+' || *data == '-' || *data == ':') {  // one line: hiredis, alone
      FeedHiredis(data, line);
      data += line, size -= line;
      continue;
    }
    FeedHiredis(data, size);  // arrays and anything malformed (hiredis reports it)
    break;
  }
  return Status::Ok();
}

std::span<char> ReplyReader::BulkWindow() {
  if (!bulk_ || bulk_filled_ == bulk_->str.size()) return {};
  return {bulk_->str.data() + bulk_filled_, bulk_->str.size() - bulk_filled_};
}

void ReplyReader::Filled(size_t n) { bulk_filled_ += std::min(n, BulkWindow().size()); }

Result<std::optional<RedisReply>> ReplyReader::Next() {
  if (reader_ == nullptr) return Status::Internal("RESP reader: out of memory");
  if (!ready_.empty()) {
    std::optional<RedisReply> out(std::move(ready_.front()));
    ready_.pop_front();
    return out;
  }
  if (!error_.ok()) return error_;
  return std::optional<RedisReply>();
}

uint16_t Crc16(std::string_view bytes) {
  static const auto kTable = [] {
    std::array<uint16_t, 256> t{};
    for (int i = 0; i < 256; ++i) {
      uint16_t crc = static_cast<uint16_t>(i << 8);
      for (int b = 0; b < 8; ++b)
        crc = static_cast<uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
      t[static_cast<size_t>(i)] = crc;
    }
    return t;
  }();
  uint16_t crc = 0;
  for (unsigned char c : bytes)
    crc = static_cast<uint16_t>((crc << 8) ^ kTable[((crc >> 8) ^ c) & 0xff]);
  return crc;
}

}  // namespace strata::cachestore::cluster
