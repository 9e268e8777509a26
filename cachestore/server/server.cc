#include "cachestore/server/server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <list>
#include <random>
#include <thread>

#include "cachestore/cluster/cluster_tier.h"
#include "cachestore/io_spin.h"
#include "cachestore/server/connection.h"
#include "cachestore/store/tiered_store.h"

namespace strata::server {

namespace asio = boost::asio;
using Protocol = asio::local::stream_protocol;

struct Server::Impl {
  ServerConfig config;
  // Declared before the io_context: connections (destroyed with its pending handlers) reclaim
  // their leases in these stores and count in these metrics.
  MetricsRegistry metrics;
  ServerShared shared;
  // One io_context per io thread, each connection on one of them (round robin): a request's read,
  // work and write run on the thread whose epoll saw it, with no hand-off to another thread (a
  // shared io_context run by N threads wakes another thread per completion: ~25 us per request
  // on 2 cores). The acceptor runs on the first.
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  size_t next_ioc = 0;  // on the acceptor's strand
  asio::thread_pool blocking;
  Protocol::acceptor acceptor;
  std::vector<std::thread> threads;
  std::mutex conn_mu;
  std::list<std::weak_ptr<Connection>> connections;  // GUARDED_BY(conn_mu)
  bool stopped = false;

  static std::vector<std::unique_ptr<asio::io_context>> MakeContexts(const ServerConfig& c) {
    const unsigned n =
        c.io_threads ? c.io_threads : std::max(4u, std::thread::hardware_concurrency());
    std::vector<std::unique_ptr<asio::io_context>> v;
    for (unsigned i = 0; i < n; ++i) v.push_back(std::make_unique<asio::io_context>(1));
    return v;
  }

  explicit Impl(ServerConfig c)
      : config(std::move(c)),
        iocs(MakeContexts(config)),
        blocking(config.blocking_threads),
        acceptor(asio::make_strand(*iocs[0])) {
    for (auto& ioc : iocs) work.push_back(asio::make_work_guard(*ioc));
  }

  void Accept();
};

void Server::Impl::Accept() {
  acceptor.async_accept(
      asio::make_strand(*iocs[next_ioc++ % iocs.size()]),
      [this](const boost::system::error_code& ec, Protocol::socket socket) {
        if (ec) {
          if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
          spdlog::warn("accept: {}", ec.message());  // e.g. EMFILE: keep serving the others
        } else {
          auto conn = std::make_shared<Connection>(shared, std::move(socket));
          {
            std::lock_guard lk(conn_mu);
            connections.remove_if([](const std::weak_ptr<Connection>& w) { return w.expired(); });
            connections.push_back(conn);
          }
          conn->Start();
        }
        Accept();
      });
}

namespace {

// A socket file a live server answers on is not taken over; a stale one (left by a killed
// server) is removed.
Status PrepareSocketPath(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Status::Ok();
  if (!S_ISSOCK(st.st_mode)) return Status::InvalidArgument(path + " exists and is not a socket");
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  if (live) return Status::FailedPrecondition("another server is listening on " + path);
  ::unlink(path.c_str());
  return Status::Ok();
}

Result<std::shared_ptr<cachestore::SharedTier>> OpenClusterTier(const ClusterConfig& c,
                                                                const TenantConfig& t) {
  cachestore::cluster::ClusterTierOptions o;
  for (const std::string& seed : c.seeds) {
    STRATA_ASSIGN_OR_RETURN(auto ep, cachestore::cluster::ParseEndpoint(seed));
    o.redis.seeds.push_back(ep);
  }
  o.redis.user = t.cluster_user;
  o.redis.password = t.cluster_password;
  o.redis.connect_timeout = std::chrono::milliseconds(c.connect_timeout_ms);
  o.redis.spin = std::chrono::microseconds(c.spin_us);
  o.prefix = t.cluster_prefix;
  o.deadline = std::chrono::milliseconds(c.deadline_ms);
  o.io_threads = c.io_threads;
  STRATA_ASSIGN_OR_RETURN(auto tier, cachestore::cluster::ClusterTier::Open(o));
  return std::shared_ptr<cachestore::SharedTier>(std::move(tier));
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(ServerConfig config) {
  STRATA_RETURN_IF_ERROR(config.Validate());
  auto impl = std::make_unique<Impl>(std::move(config));
  const ServerConfig& c = impl->config;
  impl->shared.config = &c;
  impl->shared.metrics = &impl->metrics;
  impl->shared.blocking = &impl->blocking;
  impl->shared.epoch = std::random_device{}() ^
                       (uint64_t(std::chrono::system_clock::now().time_since_epoch().count()) << 1);
  for (const TenantConfig& t : c.tenants) {
    cachestore::TieredStoreOptions options;
    // Staged writes: clients map the arena read-only (sealed), nothing to verify. In-place
    // writes: verify before serving, unless the tenant trusts its clients.
    const bool staged = t.client_writes == TenantConfig::ClientWrites::kStaging;
    options.seal_arena = staged;
    options.host_checksums = !staged && t.verify_host_copies;
    if (!c.cluster.seeds.empty()) {
      // A cluster that cannot be reached at start leaves this tenant without the shared tier
      // (logged): the node still serves from its own tiers.
      auto tier = OpenClusterTier(c.cluster, t);
      if (tier.ok()) {
        options.shared = std::move(*tier);
        options.share = c.cluster.share;
      } else {
        spdlog::error("strata-server: tenant {}: no cluster tier: {}", t.name,
                      tier.status().ToString());
      }
    }
    StoreConfig sc = c.TenantStore(t);
    auto store = cachestore::OpenTieredStore(sc, std::move(options));
    if (!store.ok()) return store.status().WithContext("tenant " + t.name);
    auto state = std::make_unique<TenantState>();
    state->config = t;
    state->owner = std::move(*store);
    state->store = static_cast<cachestore::TieredStore*>(state->owner.get());
    state->metrics = &impl->metrics.ForTenant(t.name);
    state->has_nvme = !sc.nvme.data_dir.empty();
    impl->shared.tenants.push_back(std::move(state));
  }

  std::error_code fec;
  const std::filesystem::path sock(c.socket_path);
  if (sock.has_parent_path()) std::filesystem::create_directories(sock.parent_path(), fec);
  STRATA_RETURN_IF_ERROR(PrepareSocketPath(c.socket_path));
  boost::system::error_code ec;
  impl->acceptor.open(Protocol(), ec);
  if (!ec) impl->acceptor.bind(Protocol::endpoint(c.socket_path), ec);
  if (ec) return Status::IoError("bind " + c.socket_path + ": " + ec.message());
  if (::chmod(c.socket_path.c_str(), c.socket_mode) != 0)
    return Status::IoError("chmod " + c.socket_path + ": " + std::strerror(errno));
  impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IoError("listen " + c.socket_path + ": " + ec.message());

  impl->Accept();
  const size_t n = impl->iocs.size();
  const std::chrono::microseconds spin(impl->config.io_spin_us);
  for (auto& ioc : impl->iocs)
    impl->threads.emplace_back([ioc = ioc.get(), spin] { cachestore::RunIoThread(*ioc, spin); });
  spdlog::info("strata-server: {} tenants, {} io threads, {} blocking threads", c.tenants.size(), n,
               c.blocking_threads);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { (void)Stop(); }

Status Server::Stop() {
  Impl& s = *impl_;
  if (s.stopped) return Status::Ok();
  s.stopped = true;
  s.shared.stopping.store(true);
  // Stop accepting (on the acceptor's strand), then end every connection on its own strand.
  std::promise<void> closed;
  asio::post(s.acceptor.get_executor(), [&] {
    boost::system::error_code ec;
    s.acceptor.close(ec);
    closed.set_value();
  });
  closed.get_future().wait();
  {
    std::lock_guard lk(s.conn_mu);
    for (auto& w : s.connections)
      if (auto c = w.lock()) c->Close();
    s.connections.clear();
  }
  Status first;
  for (const auto& t : s.shared.tenants) {
    if (!t->has_nvme) continue;
    Status f = t->store->Flush();
    if (!f.ok()) {
      spdlog::error("tenant {}: flush at stop failed: {}", t->config.name, f.ToString());
      if (first.ok()) first = f.WithContext("tenant " + t->config.name);
    } else {
      spdlog::info("tenant {}: flushed", t->config.name);
    }
  }
  s.blocking.join();
  s.work.clear();
  for (auto& ioc : s.iocs) ioc->stop();
  for (auto& th : s.threads) th.join();
  s.threads.clear();
  ::unlink(s.config.socket_path.c_str());
  return first;
}

const ServerConfig& Server::config() const { return impl_->config; }
MetricsRegistry& Server::metrics() { return impl_->metrics; }

std::vector<TenantView> Server::TenantViews() const {
  std::vector<TenantView> out;
  for (const auto& t : impl_->shared.tenants)
    out.push_back(TenantView{t->metrics, t->store, t->config.host_quota_bytes,
                             t->has_nvme ? t->config.nvme_quota_bytes : 0});
  return out;
}

}  // namespace strata::server
