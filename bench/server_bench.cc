#include "bench/server_bench.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include "bench/store_bench.h"
#include "bench/v4_payload.h"
#include "cachestore/host/host_arena.h"
#include "cachestore/server/server.h"
#include "cachestore/store/tiered_store.h"
#include "strata/client.h"
#include "strata/wire.h"

namespace strata::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void Progress(const std::string& what) {
  static const Clock::time_point start = Clock::now();
  std::cerr << fmt::format("bench server [{:6.1f} s]: ", Seconds(start)) << what << std::endl;
}

// `json` (an object) with `fields` ("\"k\": v, ...") added at its end.
std::string With(std::string json, const std::string& fields) {
  json.insert(json.size() - 1, ", " + fields);
  return json;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, size_t(q * double(v.size())));
  std::nth_element(v.begin(), v.begin() + long(i), v.end());
  return v[i];
}

// Keys per Get: the engine reads a restore plan's blocks in one Get (engine/session.cc); 32
// blocks are 8,192 tokens at B=256, a short shared prefix.
constexpr size_t kGetBatch = 32;

// Where a side's time went, per batch of kGetBatch objects, in three steps. A consumer's
// (kReadSteps): the Get call, copying the bytes out, the Release call. A writer's (kWriteSteps):
// the daemon's RESERVE round trip, the client's writes into what it reserved, its COMMIT round
// trip; for the in-process Put producer, "reserve" stays 0, "write" is building the batch and
// "commit" the Puts.
using Steps = std::array<const char*, 3>;
constexpr Steps kReadSteps = {"get_us", "copy_us", "release_us"};
constexpr Steps kWriteSteps = {"reserve_us", "write_us", "commit_us"};
struct BatchSplit {
  std::array<double, 3> s{};  // seconds in each step, summed over batches
  uint64_t batches = 0;
  // One batch whose steps took [t0, t1), [t1, t2) and [t2, t3).
  void Add(Clock::time_point t0, Clock::time_point t1, Clock::time_point t2, Clock::time_point t3) {
    s[0] += std::chrono::duration<double>(t1 - t0).count();
    s[1] += std::chrono::duration<double>(t2 - t1).count();
    s[2] += std::chrono::duration<double>(t3 - t2).count();
    ++batches;
  }
  // {"<step>": microseconds per batch, ...}.
  std::string Json(const Steps& steps) const {
    const double b = double(std::max<uint64_t>(1, batches)) / 1e6;
    return fmt::format(R"({{"{}": {:.1f}, "{}": {:.1f}, "{}": {:.1f}}})", steps[0], s[0] / b,
                       steps[1], s[1] / b, steps[2], s[2] / b);
  }
};

// Reads every object of `keys` (batches of kGetBatch keys) from `s`, copies each out and releases
// it: what a consumer of restored state does. Returns the bytes read, or an error on a miss.
Result<uint64_t> ReadAll(Store& s, NamespaceId ns, uint64_t fp, std::span<const BlockKey> keys,
                         Family f, std::vector<std::byte>& sink, size_t start = 0,
                         BatchSplit* split = nullptr) {
  uint64_t bytes = 0;
  std::vector<uint64_t> pins;
  for (size_t done = 0; done < keys.size();) {
    const size_t i = (start + done) % keys.size();
    const size_t n = std::min<size_t>({kGetBatch, keys.size() - done, keys.size() - i});
    const auto t0 = Clock::now();
    STRATA_ASSIGN_OR_RETURN(auto views, s.Get(ns, fp, keys.subspan(i, n), FamilyMask{f}));
    const auto t1 = Clock::now();
    pins.clear();
    for (const ObjectView& v : views) {
      if (!v.found()) return Status::NotFound("bench: an object went missing");
      std::memcpy(sink.data(), v.data, v.size);
      bytes += v.size;
      pins.push_back(v.pin);
    }
    const auto t2 = Clock::now();
    s.Release(pins);
    if (split) split->Add(t0, t1, t2, Clock::now());
    done += n;
  }
  return bytes;
}

// A bare Unix-socket request/response peer: a thread answers every `req` bytes with `resp`
// bytes; the client side writes and reads with plain calls. Each side polls as the daemon and
// its clients are set to (io_spin_us, client_spin_us: non-blocking reads, yielding the core,
// until that long has passed without data, then a blocking read), so that it stays their floor.
class EchoPeer {
 public:
  static Result<std::unique_ptr<EchoPeer>> Start(const std::string& path, size_t req, size_t resp,
                                                 uint32_t server_spin_us, uint32_t client_spin_us) {
    auto p = std::unique_ptr<EchoPeer>(new EchoPeer(req, resp));
    p->server_spin_ = std::chrono::microseconds(server_spin_us);
    p->client_spin_ = std::chrono::microseconds(client_spin_us);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) return Status::InvalidArgument("echo: path too long");
    std::memcpy(a.sun_path, path.data(), path.size());
    ::unlink(path.c_str());
    const int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 1) != 0)
      return Status::IoError("echo: cannot listen on " + path);
    p->client_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(p->client_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      return Status::IoError("echo: cannot connect");
    p->server_ = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(l);
    ::unlink(path.c_str());
    if (p->server_ < 0) return Status::IoError("echo: accept failed");
    p->thread_ = std::thread([q = p.get()] { q->Serve(); });
    return p;
  }
  ~EchoPeer() {
    ::shutdown(client_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(client_);
    ::close(server_);
  }
  // One request/response round trip.
  bool RoundTrip() {
    return Xfer(client_, req_, true, client_spin_) && Xfer(client_, resp_, false, client_spin_);
  }

 private:
  EchoPeer(size_t req, size_t resp) : req_(req), resp_(resp) {}
  static bool Xfer(int fd, std::vector<std::byte>& buf, bool send, std::chrono::microseconds spin) {
    size_t done = 0;
    auto spin_until = Clock::now() + spin;
    while (done < buf.size()) {
      const bool poll = !send && Clock::now() < spin_until;
      const ssize_t n =
          send ? ::send(fd, buf.data() + done, buf.size() - done, MSG_NOSIGNAL)
               : ::recv(fd, buf.data() + done, buf.size() - done, poll ? MSG_DONTWAIT : 0);
      if (n < 0 && poll && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        std::this_thread::yield();
        continue;
      }
      if (n <= 0) return false;
      done += size_t(n);
      spin_until = Clock::now() + spin;
    }
    return true;
  }
  void Serve() {
    std::vector<std::byte> in(req_.size()), out(resp_.size());
    while (Xfer(server_, in, false, server_spin_) && Xfer(server_, out, true, server_spin_)) {
    }
  }
  std::chrono::microseconds server_spin_{0}, client_spin_{0};
  std::vector<std::byte> req_, resp_;
  int client_ = -1, server_ = -1;
  std::thread thread_;
};

struct Bench {
  const ServerBenchOptions& o;
  const std::function<void(const std::string&)>& emit;
  cachestore::TieredStore* local = nullptr;  // the in-process peer
  // The in-process store with the daemon's host checksums (verified before every Get is
  // served): tells the socket's cost apart from the verification's.
  cachestore::TieredStore* local_sums = nullptr;
  // A client of the default tenant: staged writes, the arena sealed read-only, nothing to
  // verify (the in-process store's guarantees).
  std::unique_ptr<Client> client;
  // A client of a tenant that writes in place and verifies host copies (client_writes
  // "in_place"): set against the in-process store with the same host checksums.
  std::unique_ptr<Client> in_place;
  // A client of the tenant that writes in place and trusts its clients (verify_host_copies
  // false): no checksums, one copy less per Commit than staging.
  std::unique_ptr<Client> trusted;
  // A second connection of the default tenant for PutMany: a staging region of its own, so the
  // PUT side and the RESERVE/COMMIT side do not warm each other's.
  std::unique_ptr<Client> putter;
  ClientOptions copts;
  uint64_t fp = 0;

  bool Want(const std::string& figure) const { return WantFigure(o.only, figure); }

  // n objects of family f in namespace ns of both stores; their keys.
  Result<std::vector<BlockKey>> Fill(NamespaceId ns, Family f, size_t n) {
    const uint64_t size = o.layout.FamilyBlockBytes(f);
    std::vector<std::byte> bytes(size);
    std::vector<BlockKey> keys;
    for (size_t i = 0; i < n; ++i) {
      keys.push_back(BlockKey{ns, i});
      FillPseudoRandom(bytes.data(), size, ns * 100000 + i);
      const ObjectKey k{ns, keys.back(), f};
      STRATA_RETURN_IF_ERROR(client->Put(k, fp, bytes).WithContext("daemon put"));
      STRATA_RETURN_IF_ERROR(in_place->Put(k, fp, bytes).WithContext("daemon put (in place)"));
      STRATA_RETURN_IF_ERROR(trusted->Put(k, fp, bytes).WithContext("daemon put (trusted)"));
      STRATA_RETURN_IF_ERROR(local->Put(k, fp, bytes).WithContext("in-process put"));
      STRATA_RETURN_IF_ERROR(local_sums->Put(k, fp, bytes).WithContext("in-process put"));
    }
    return keys;
  }
  Status Drop(NamespaceId ns) {
    STRATA_RETURN_IF_ERROR(client->Delete(ns));
    STRATA_RETURN_IF_ERROR(in_place->Delete(ns));
    STRATA_RETURN_IF_ERROR(trusted->Delete(ns));
    STRATA_RETURN_IF_ERROR(local_sums->Delete(ns));
    return local->Delete(ns);
  }
  size_t Count(Family f) const {
    const uint64_t size = o.layout.FamilyBlockBytes(f);
    return size_t(std::clamp<uint64_t>(o.bytes_per_family / size, 8, 4096));
  }

  Status GetFigure(Family f) {
    const std::string name = fmt::format("server.get.{}", FamilyName(f));
    if (!Want(name)) return Status::Ok();
    const NamespaceId ns = 10 + uint64_t(f);
    const size_t n = Count(f);
    Progress(fmt::format("{}: {} objects of {} B", name, n, o.layout.FamilyBlockBytes(f)));
    STRATA_ASSIGN_OR_RETURN(auto keys, Fill(ns, f, n));
    std::vector<std::byte> sink(o.layout.FamilyBlockBytes(f));
    Samples daemon, daemon_in_place, daemon_trusted, peer, peer_sums;
    BatchSplit split_daemon, split_trusted, split_peer;
    auto run = [&](Store& s, Samples& out, BatchSplit* split) -> Status {
      const auto t = Clock::now();
      STRATA_ASSIGN_OR_RETURN(uint64_t bytes, ReadAll(s, ns, fp, keys, f, sink, 0, split));
      out.Add(double(bytes) / Seconds(t) / 1e9);
      return Status::Ok();
    };
    const std::function<Status()> sides[] = {
        [&] { return run(*client, daemon, &split_daemon); },
        [&] { return run(*in_place, daemon_in_place, nullptr); },
        [&] { return run(*trusted, daemon_trusted, &split_trusted); },
        [&] { return run(*local, peer, &split_peer); },
        [&] { return run(*local_sums, peer_sums, nullptr); }};
    for (size_t k = 0; k < 3; ++k) STRATA_RETURN_IF_ERROR(sides[k]());  // warm-up
    daemon.v.clear(), daemon_in_place.v.clear(), daemon_trusted.v.clear();
    split_daemon = split_trusted = split_peer = BatchSplit{};
    for (uint32_t r = 0; r < o.rounds; ++r)
      for (size_t k = 0; k < 5; ++k) STRATA_RETURN_IF_ERROR(sides[(k + r) % 5]());
    const std::string sizes =
        fmt::format(R"("object_bytes": {}, "objects": {})", o.layout.FamilyBlockBytes(f), n);
    // Per batch of kGetBatch keys, over all rounds: where each side's time went.
    auto split = [&](const BatchSplit& d) {
      return fmt::format(R"(, "split": {{"daemon": {}, "in_process": {}}})", d.Json(kReadSteps),
                         split_peer.Json(kReadSteps));
    };
    emit(With(FigureJson(name, daemon, "GB/s", "in_process", peer), sizes + split(split_daemon)));
    emit(With(FigureJson(name + ".in_place", daemon_in_place, "GB/s", "in_process_host_checksums",
                         peer_sums),
              sizes));
    emit(With(FigureJson(name + ".trusted", daemon_trusted, "GB/s", "in_process", peer),
              sizes + split(split_trusted)));
    return Drop(ns);
  }

  Status ReserveCommitFigure(Family f) {
    const std::string name = fmt::format("server.reserve_commit.{}", FamilyName(f));
    const std::string put_name = fmt::format("server.put.{}", FamilyName(f));
    if (!Want(name) && !Want(put_name)) return Status::Ok();
    const NamespaceId ns = 20 + uint64_t(f);
    const uint64_t size = o.layout.FamilyBlockBytes(f);
    const size_t n = Count(f);
    Progress(fmt::format("{}: {} objects of {} B", name, n, size));
    std::vector<std::byte> src(size);
    FillPseudoRandom(src.data(), size, 7);
    Samples daemon, daemon_in_place, daemon_trusted, peer, peer_sums, peer_put;
    // The client reserves and commits kGetBatch objects per round trip (ReserveMany,
    // CommitMany), as a frontend offloading a prefill's blocks would; the in-process store has no
    // round trips.
    BatchSplit split_daemon, split_put;
    auto run_daemon = [&](Client& c, Samples& out, BatchSplit* split) -> Status {
      const auto t = Clock::now();
      std::vector<Client::ReserveSpec> specs;
      std::vector<Client::Reservation> rs;
      for (size_t i = 0; i < n;) {
        const size_t m = std::min<size_t>(kGetBatch, n - i);
        specs.clear(), rs.clear();
        for (size_t j = i; j < i + m; ++j) specs.push_back({{ns, BlockKey{ns, j}, f}, size, {}});
        const auto t0 = Clock::now();
        auto reserved = c.ReserveMany(fp, specs);
        const auto t1 = Clock::now();
        for (auto& r : reserved) {
          STRATA_RETURN_IF_ERROR(r.status());
          std::memcpy(r->data, src.data(), size);
          rs.push_back(*r);
        }
        const auto t2 = Clock::now();
        for (const Status& st : c.CommitMany(rs)) STRATA_RETURN_IF_ERROR(st);
        if (split) split->Add(t0, t1, t2, Clock::now());
        i += m;
      }
      out.Add(double(n * size) / Seconds(t) / 1e9);
      return Status::Ok();
    };
    // The one-round-trip write: PutMany copies each batch into the staging region at places of
    // its own and sends one PUT (wire::kCapPut), so no RESERVE round trip.
    Samples daemon_put;
    auto run_daemon_put = [&](Client& c, Samples& out) -> Status {
      const auto t = Clock::now();
      std::vector<Client::PutSpec> specs;
      for (size_t i = 0; i < n;) {
        const size_t m = std::min<size_t>(kGetBatch, n - i);
        specs.clear();
        for (size_t j = i; j < i + m; ++j) specs.push_back({{ns, BlockKey{ns, j}, f}, src, {}});
        for (const Status& st : c.PutMany(fp, specs)) STRATA_RETURN_IF_ERROR(st);
        i += m;
      }
      out.Add(double(n * size) / Seconds(t) / 1e9);
      return Status::Ok();
    };
    auto run_local = [&](cachestore::TieredStore& s, Samples& out) -> Status {
      const auto t = Clock::now();
      for (size_t i = 0; i < n; ++i) {
        STRATA_ASSIGN_OR_RETURN(auto r, s.Reserve({ns, BlockKey{ns, i}, f}, fp, size, {}));
        std::memcpy(s.arena_base() + r.payload_offset, src.data(), size);
        STRATA_ASSIGN_OR_RETURN(bool stored, s.Commit(r));
        if (!stored) return Status::Internal("bench: the in-process store declined an object");
      }
      out.Add(double(n * size) / Seconds(t) / 1e9);
      return Status::Ok();
    };
    // The in-process store with the guarantee of staged writes (the bytes stored cannot be
    // changed by their producer afterwards): the producer writes each object into a buffer of
    // its own, a batch at a time as through the daemon's staging region, then Puts it (copied
    // in), as an engine running the store in-process does.
    std::vector<std::byte> produced(kGetBatch * size);
    auto run_local_put = [&](cachestore::TieredStore& s, Samples& out) -> Status {
      const auto t = Clock::now();
      for (size_t i = 0; i < n;) {
        const size_t m = std::min<size_t>(kGetBatch, n - i);
        const auto t0 = Clock::now();
        for (size_t j = 0; j < m; ++j) std::memcpy(produced.data() + j * size, src.data(), size);
        const auto t1 = Clock::now();
        for (size_t j = 0; j < m; ++j)
          STRATA_RETURN_IF_ERROR(s.Put({ns, BlockKey{ns, i + j}, f}, fp,
                                       std::span(produced).subspan(j * size, size), {}));
        split_put.Add(t0, t0, t1, Clock::now());
        i += m;
      }
      out.Add(double(n * size) / Seconds(t) / 1e9);
      return Status::Ok();
    };
    auto all = [&](uint32_t round) -> Status {
      const std::function<Status()> sides[] = {
          [&] { return run_daemon(*client, daemon, &split_daemon); },
          [&] { return run_daemon(*in_place, daemon_in_place, nullptr); },
          [&] { return run_daemon(*trusted, daemon_trusted, nullptr); },
          [&] { return run_local(*local, peer); },
          [&] { return run_local(*local_sums, peer_sums); },
          [&] { return run_local_put(*local, peer_put); },
          [&] { return run_daemon_put(*putter, daemon_put); }};
      for (size_t k = 0; k < 7; ++k) STRATA_RETURN_IF_ERROR(sides[(k + round) % 7]());
      return Status::Ok();
    };
    STRATA_RETURN_IF_ERROR(all(0));  // warm-up: the objects exist from here on
    daemon.v.clear(), daemon_in_place.v.clear(), daemon_trusted.v.clear(), daemon_put.v.clear();
    peer.v.clear(), peer_sums.v.clear(), peer_put.v.clear();
    split_daemon = split_put = BatchSplit{};
    for (uint32_t r = 0; r < o.rounds; ++r) STRATA_RETURN_IF_ERROR(all(r));
    const std::string sizes = fmt::format(R"("object_bytes": {}, "objects": {})", size, n);
    emit(With(FigureJson(name, daemon, "GB/s", "in_process_put", peer_put),
              sizes + fmt::format(R"(, "split": {{"daemon": {}, "in_process_put": {}}})",
                                  split_daemon.Json(kWriteSteps), split_put.Json(kWriteSteps))));
    emit(With(FigureJson(name + ".vs_in_place_commit", daemon, "GB/s", "in_process", peer), sizes));
    emit(With(FigureJson(put_name, daemon_put, "GB/s", "in_process_put", peer_put), sizes));
    emit(With(FigureJson(name + ".in_place", daemon_in_place, "GB/s", "in_process_host_checksums",
                         peer_sums),
              sizes));
    emit(With(FigureJson(name + ".trusted", daemon_trusted, "GB/s", "in_process", peer), sizes));
    return Drop(ns);
  }

  // p50 and p99 in microseconds of `op` against the echo peer of the same frame sizes.
  Status LatencyFigure(const std::string& name, size_t req_bytes, size_t resp_bytes,
                       const std::function<Result<double>()>& op) {
    STRATA_ASSIGN_OR_RETURN(auto echo, EchoPeer::Start(o.dir + "/echo.sock", req_bytes, resp_bytes,
                                                       o.io_spin_us, o.client_spin_us));
    Samples d50, d99, e50, e99;
    auto run_daemon = [&]() -> Status {
      std::vector<double> us;
      for (uint32_t i = 0; i < o.latency_samples; ++i) {
        STRATA_ASSIGN_OR_RETURN(double s, op());
        us.push_back(s * 1e6);
      }
      d50.Add(Percentile(us, 0.5)), d99.Add(Percentile(us, 0.99));
      return Status::Ok();
    };
    auto run_echo = [&]() -> Status {
      std::vector<double> us;
      for (uint32_t i = 0; i < o.latency_samples; ++i) {
        const auto t = Clock::now();
        if (!echo->RoundTrip()) return Status::IoError("echo round trip failed");
        us.push_back(Seconds(t) * 1e6);
      }
      e50.Add(Percentile(us, 0.5)), e99.Add(Percentile(us, 0.99));
      return Status::Ok();
    };
    for (uint32_t r = 0; r < o.rounds; ++r) {
      STRATA_RETURN_IF_ERROR(r % 2 ? run_echo() : run_daemon());
      STRATA_RETURN_IF_ERROR(r % 2 ? run_daemon() : run_echo());
    }
    const std::string sizes = fmt::format(
        R"("request_frame_bytes": {}, "response_frame_bytes": {})", req_bytes, resp_bytes);
    emit(With(FigureJson(name + ".p50", d50, "us", "unix_echo", e50, false), sizes));
    emit(With(FigureJson(name + ".p99", d99, "us", "unix_echo", e99, false), sizes));
    return Status::Ok();
  }

  Status SmallVerbFigures() {
    const NamespaceId ns = 30;
    const Family f = Family::kHca;
    if (Want("server.lookup64")) {
      Progress("server.lookup64");
      STRATA_ASSIGN_OR_RETURN(auto keys, Fill(ns, f, 64));
      std::vector<std::byte> req, resp;
      wire::EncodeLookup(1, {ns, fp, FamilyMask{f}.bits(), keys}, req);
      wire::LookupResponse lr;
      lr.blocks.resize(64);
      wire::EncodeLookupResponse(1, lr, resp);
      STRATA_RETURN_IF_ERROR(
          LatencyFigure("server.lookup64", req.size(), resp.size(), [&]() -> Result<double> {
            const auto t = Clock::now();
            STRATA_ASSIGN_OR_RETURN(auto l, client->Lookup(ns, fp, keys, FamilyMask{f}));
            const double s = Seconds(t);
            if (l.hit_blocks != 64) return Status::NotFound("bench: the chain went missing");
            return s;
          }));
      STRATA_RETURN_IF_ERROR(Drop(ns));
    }
    if (Want("server.release")) {
      Progress("server.release");
      STRATA_ASSIGN_OR_RETURN(auto keys, Fill(ns, f, 1));
      std::vector<std::byte> req, resp;
      wire::EncodeIds(1, wire::Verb::kRelease, {{1}}, req);
      wire::EncodeStatusList(1, wire::Verb::kRelease, {{wire::WireStatus::kOk}}, resp);
      // The round trip of RELEASE itself: a client that waits for its response.
      ClientOptions sync = copts;
      sync.defer_release_acks = false;
      STRATA_ASSIGN_OR_RETURN(auto rc, Client::Connect(sync));
      STRATA_RETURN_IF_ERROR(
          LatencyFigure("server.release", req.size(), resp.size(), [&]() -> Result<double> {
            STRATA_ASSIGN_OR_RETURN(auto v, rc->Get(ns, fp, keys, FamilyMask{f}));
            if (!v[0].found()) return Status::NotFound("bench: the object went missing");
            const uint64_t pin = v[0].pin;
            const auto t = Clock::now();
            rc->Release(std::span(&pin, 1));
            return Seconds(t);
          }));
      STRATA_RETURN_IF_ERROR(Drop(ns));
    }
    return Status::Ok();
  }

  Status ClientsFigures() {
    if (!Want("server.clients")) return Status::Ok();
    const NamespaceId ns = 40;
    const Family f = Family::kCsa;
    const size_t n = Count(f);
    Progress(fmt::format("server.clients: {} csa objects", n));
    STRATA_ASSIGN_OR_RETURN(auto keys, Fill(ns, f, n));
    const uint64_t size = o.layout.FamilyBlockBytes(f);
    for (int threads : o.clients) {
      std::vector<std::unique_ptr<Client>> clients;
      for (int i = 0; i < threads; ++i) {
        STRATA_ASSIGN_OR_RETURN(auto c, Client::Connect(copts));
        clients.push_back(std::move(c));
      }
      // `threads` readers for clients_seconds, each from its own start in the key list.
      auto run = [&](bool daemon) -> Result<double> {
        std::atomic<uint64_t> bytes{0};
        std::atomic<bool> failed{false};
        std::vector<std::thread> ts;
        const auto t = Clock::now();
        for (int i = 0; i < threads; ++i)
          ts.emplace_back([&, i] {
            Store& s = daemon ? static_cast<Store&>(*clients[size_t(i)]) : *local;
            std::vector<std::byte> sink(size);
            while (Seconds(t) < o.clients_seconds) {
              auto b = ReadAll(s, ns, fp, keys, f, sink, size_t(i) * keys.size() / size_t(threads));
              if (!b.ok()) {
                failed = true;
                return;
              }
              bytes += *b;
            }
          });
        for (auto& th : ts) th.join();
        if (failed) return Status::NotFound("bench: an object went missing");
        return double(bytes) / Seconds(t) / 1e9;
      };
      Samples d, p;
      for (uint32_t r = 0; r < o.rounds; ++r) {
        for (bool daemon : {r % 2 == 0, r % 2 != 0}) {
          STRATA_ASSIGN_OR_RETURN(double gbs, run(daemon));
          (daemon ? d : p).Add(gbs);
        }
      }
      emit(With(
          FigureJson(fmt::format("server.clients.{}", threads), d, "GB/s", "in_process_threads", p),
          fmt::format(R"("clients": {}, "object_bytes": {}, "daemon_io_threads": {})", threads,
                      size, o.io_threads)));
    }
    return Drop(ns);
  }
};

}  // namespace

Status RunServerBench(const ServerBenchOptions& o,
                      const std::function<void(const std::string& json_line)>& emit) {
  if (o.rounds == 0 || o.latency_samples == 0)
    return Status::InvalidArgument("rounds and samples > 0");
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) return Status::IoError("cannot create " + o.dir + ": " + ec.message());
  uint64_t biggest = 0;
  for (Family f : kAllFamilies) biggest = std::max(biggest, o.layout.FamilyBlockBytes(f));
  // Room for one family's objects and a second copy while Commit replaces them, with slack.
  const uint64_t host = 3 * o.bytes_per_family + 4 * biggest + (64ull << 20);
  // A control, not a side: on the development VM the first large memfd a process allocates
  // reads 5-15% slower than later ones (a standalone check with four 768 MiB memfds: 14.1-15.7
  // GB/s for the first, 15.6-18.1 for the others), and whichever side got it lost that much.
  // This arena takes that place and is held to the end, so no measured arena is the first.
  auto first_arena = cachestore::HostArena::Create(host, /*prefault=*/true, /*seal=*/false);
  if (!first_arena.ok()) return first_arena.status().WithContext("bench: the first arena");
  // Three tenants of the daemon share its DRAM: the default (staged writes), "in_place" (host
  // copies verified) and "trusted". A staging region holds a whole batch of the largest family.
  const uint64_t staging = std::max<uint64_t>(256ull << 20, 2 * kGetBatch * biggest);

  // Through the daemon's own config parser, so its defaults and shares apply as in a deployment.
  const std::string json = fmt::format(
      R"({{"socket": "{}", "data_dir": "{}", "io_threads": {}, "io_spin_us": {}, "metrics_port": 0,
          "host": {{"capacity": {}, "prefault": true}}, "nvme": null,
          "tenants": [{{"name": "default", "staging_bytes": {}}},
                      {{"name": "in_place", "client_writes": "in_place"}},
                      {{"name": "trusted", "verify_host_copies": false}}]}})",
      (fs::absolute(o.dir) / "bench.sock").string(), (fs::absolute(o.dir) / "data").string(),
      o.io_threads, o.io_spin_us, 3 * host, staging);
  STRATA_ASSIGN_OR_RETURN(server::ServerConfig sc, server::ParseServerConfig(json, "bench"));
  sc.store.nvme.data_dir.clear();  // DRAM only: the figures compare the data plane, not disks
  Progress(fmt::format("daemon and in-process store with {} MiB of DRAM each", host >> 20));
  emit(fmt::format(
      R"({{"figure": "server.setup", "io_threads": {}, "io_spin_us": {}, "client_spin_us": {}, )"
      R"("get_batch": {}, "coalesce_releases": true}})",
      o.io_threads, o.io_spin_us, o.client_spin_us, kGetBatch));
  STRATA_ASSIGN_OR_RETURN(auto daemon, server::Server::Start(sc));

  StoreConfig lc;
  lc.host = sc.store.host;
  lc.host.capacity_bytes = host;
  lc.nvme.data_dir.clear();
  STRATA_ASSIGN_OR_RETURN(auto local, cachestore::OpenTieredStore(lc, {}));
  cachestore::TieredStoreOptions sums;
  sums.host_checksums = true;
  STRATA_ASSIGN_OR_RETURN(auto local_sums, cachestore::OpenTieredStore(lc, std::move(sums)));

  Bench b{o, emit, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, ClientOptions{}, 0};
  b.local = static_cast<cachestore::TieredStore*>(local.get());
  b.local_sums = static_cast<cachestore::TieredStore*>(local_sums.get());
  b.fp = o.layout.fingerprint();
  b.copts.socket_path = sc.socket_path;
  b.copts.fingerprint = b.fp;
  b.copts.block_tokens = o.layout.block_size();
  b.copts.defer_release_acks = true;  // a consumer's Get + Release: one round trip
  b.copts.coalesce_releases = true;   // ... and one write: the RELEASE goes with the next GET
  b.copts.spin_us = o.client_spin_us;
  STRATA_ASSIGN_OR_RETURN(b.client, Client::Connect(b.copts));
  ClientOptions in_place_opts = b.copts;
  in_place_opts.tenant = "in_place";
  STRATA_ASSIGN_OR_RETURN(b.in_place, Client::Connect(in_place_opts));
  ClientOptions trusted_opts = b.copts;
  trusted_opts.tenant = "trusted";
  STRATA_ASSIGN_OR_RETURN(b.trusted, Client::Connect(trusted_opts));
  STRATA_ASSIGN_OR_RETURN(b.putter, Client::Connect(b.copts));

  Status s;
  for (Family f : kAllFamilies) {
    if (o.layout.FamilyBlockBytes(f) == 0) continue;
    if (s.ok()) s = b.GetFigure(f);
    if (s.ok()) s = b.ReserveCommitFigure(f);
  }
  if (s.ok()) s = b.SmallVerbFigures();
  if (s.ok()) s = b.ClientsFigures();
  b.client.reset();
  b.in_place.reset();
  b.trusted.reset();
  Status stop = daemon->Stop();
  fs::remove_all(o.dir, ec);
  if (!s.ok()) return s;
  return stop;
}

}  // namespace strata::bench
