#include "cachestore/cluster/resp.h"

#include <hiredis/read.h>

#include <array>
#include <charconv>
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

void AppendHeader(char type, size_t n, std::string& out) {
  std::array<char, 24> digits;
  const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), n);
  out.push_back(type);
  out.append(digits.data(), end);
  out.append("\r\n", 2);
}

}  // namespace

void AppendCommand(std::span<const std::string_view> args, std::string& out,
                   std::vector<ExternalPiece>* external) {
  AppendHeader('*', args.size(), out);
  for (std::string_view a : args) {
    AppendHeader('$', a.size(), out);
    if (external != nullptr && a.size() >= kZeroCopyMinBytes) {
      external->push_back(ExternalPiece{out.size(), a});
    } else {
      out.append(a);
    }
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
}

Status ReplyReader::Feed(const char* data, size_t size) {
  if (reader_ == nullptr) return Status::Internal("RESP reader: out of memory");
  if (redisReaderFeed(reader_, data, size) != REDIS_OK)
    return Status::Corruption(std::string("RESP reader: ") + reader_->errstr);
  return Status::Ok();
}

Result<std::optional<RedisReply>> ReplyReader::Next() {
  if (reader_ == nullptr) return Status::Internal("RESP reader: out of memory");
  void* obj = nullptr;
  if (redisReaderGetReply(reader_, &obj) != REDIS_OK)
    return Status::Corruption(std::string("RESP reader: ") + reader_->errstr);
  if (obj == nullptr) return std::optional<RedisReply>();
  auto* reply = static_cast<RedisReply*>(obj);
  std::optional<RedisReply> out(std::move(*reply));
  delete reply;
  return out;
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
