#include "cachestore/server/http_endpoint.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <vector>

namespace strata::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr uint64_t kMaxRequestBody = 4096;  // GET carries none; anything larger is refused
constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

class Session;

}  // namespace

struct HttpEndpoint::State : std::enable_shared_from_this<HttpEndpoint::State> {
  State(net::io_context& io, RenderFn fn)
      : strand(net::make_strand(io)), acceptor(strand), render(std::move(fn)) {}

  // The rendered exposition, or nothing once Stop() has begun (the lock makes Stop wait for a
  // render in progress, so none starts or runs after Stop returns).
  std::optional<std::string> Render() {
    std::lock_guard<std::mutex> lock(mu);
    if (stopped) return std::nullopt;
    return render();
  }
  bool Stopped() {
    std::lock_guard<std::mutex> lock(mu);
    return stopped;
  }

  void Accept();
  void CloseAll();  // on the strand

  net::strand<net::io_context::executor_type> strand;
  tcp::acceptor acceptor;                        // used on the strand only
  std::vector<std::weak_ptr<Session>> sessions;  // open connections; on the strand only
  RenderFn render;
  std::mutex mu;
  bool stopped = false;  // GUARDED_BY(mu)
};

namespace {

// One connection: read a request, answer it, repeat while the client keeps it alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<HttpEndpoint::State> state)
      : stream_(std::move(socket)), state_(std::move(state)) {}

  void Read() {
    parser_.emplace();
    parser_->body_limit(kMaxRequestBody);
    stream_.expires_after(kIdleTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec) {  // closed by the peer, timed out, malformed, or aborted by Stop
      Close();
      return;
    }
    const auto& req = parser_->get();
    res_ = {};
    res_.version(req.version());
    res_.keep_alive(req.keep_alive());
    res_.set(http::field::server, "strata-server");
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));  // scrapers may add parameters; none are used
    if (target != "/metrics") {
      Answer(http::status::not_found, "text/plain", "not found\n");
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res_.set(http::field::allow, "GET, HEAD");
      Answer(http::status::method_not_allowed, "text/plain", "method not allowed\n");
    } else if (auto body = state_->Render()) {
      Answer(http::status::ok, kContentType, std::move(*body));
      if (req.method() == http::verb::head) res_.body().clear();  // Content-Length stays
    } else {
      Close();  // stopping
      return;
    }
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void Answer(http::status status, std::string_view type, std::string body) {
    res_.result(status);
    res_.set(http::field::content_type, beast::string_view(type.data(), type.size()));
    res_.body() = std::move(body);
    res_.prepare_payload();
  }

  void OnWrite(beast::error_code ec) {
    if (ec || !res_.keep_alive() || state_->Stopped()) {
      Close();
      return;
    }
    Read();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::shared_ptr<HttpEndpoint::State> state_;
};

}  // namespace

void HttpEndpoint::State::Accept() {
  acceptor.async_accept(
      strand, [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
        if (!ec && !self->Stopped()) {
          std::erase_if(self->sessions, [](const auto& w) { return w.expired(); });
          auto session = std::make_shared<Session>(std::move(socket), self);
          self->sessions.push_back(session);
          session->Read();
        }
        // An accept error (e.g. out of descriptors) drops that connection, not the endpoint.
        self->Accept();
      });
}

void HttpEndpoint::State::CloseAll() {
  beast::error_code ec;
  acceptor.close(ec);
  for (auto& w : sessions)
    if (auto s = w.lock()) s->Close();
  sessions.clear();
}

HttpEndpoint::HttpEndpoint(std::shared_ptr<State> state, uint16_t port)
    : state_(std::move(state)), port_(port) {}

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Open(net::io_context& io,
                                                         const HttpEndpointOptions& options,
                                                         RenderFn render) {
  beast::error_code ec;
  const auto address = net::ip::make_address(options.address, ec);
  if (ec) return Status::InvalidArgument("metrics endpoint: bad address '" + options.address + "'");
  auto state = std::make_shared<State>(io, std::move(render));
  const tcp::endpoint want(address, options.port);
  const std::string where = options.address + ":" + std::to_string(options.port);
  state->acceptor.open(want.protocol(), ec);
  if (!ec) state->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(want, ec);
  if (!ec) state->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status::IoError("metrics endpoint: bind/listen " + where + ": " + ec.message());
  const uint16_t port = state->acceptor.local_endpoint(ec).port();
  if (ec) return Status::IoError("metrics endpoint: local_endpoint: " + ec.message());
  net::post(state->strand, [state] { state->Accept(); });
  return std::unique_ptr<HttpEndpoint>(new HttpEndpoint(std::move(state), port));
}

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::StartOn(net::io_context& io,
                                                            const HttpEndpointOptions& options,
                                                            RenderFn render) {
  return Open(io, options, std::move(render));
}

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const HttpEndpointOptions& options,
                                                          RenderFn render) {
  auto io = std::make_unique<net::io_context>(1);
  auto ep = Open(*io, options, std::move(render));
  if (!ep.ok()) return ep.status();
  std::unique_ptr<HttpEndpoint> e = std::move(ep).value();
  e->own_io_ = std::move(io);
  // run() returns once Stop has closed the acceptor and every connection: no work is left.
  e->thread_ = std::thread([io = e->own_io_.get()] { io->run(); });
  return e;
}

void HttpEndpoint::Stop() {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopped = true;
  }
  // On the strand: immediately when called from one of its handlers, else when it next runs.
  net::dispatch(state_->strand, [state = state_] { state->CloseAll(); });
  if (thread_.joinable()) thread_.join();
  state_.reset();
}

HttpEndpoint::~HttpEndpoint() {
  Stop();
  own_io_.reset();  // after the thread is joined
}

}  // namespace strata::server
