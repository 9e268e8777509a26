// strata-server's metrics endpoint: a minimal HTTP/1.1 server (Boost.Beast) on a local TCP port
// that answers GET /metrics with the text a callback renders (the Prometheus exposition,
// metrics.h), 404 for any other path and 405 for another method on /metrics. Keep-alive is
// honoured; an idle connection is closed after 30 s.
//
// It runs on its own thread (Start) or on an io_context the caller runs (StartOn); either way
// its handlers share one strand, so the callback is never called concurrently by the endpoint.
// Thread safety: port() and Stop() may be called from any thread, and Stop() from a handler of
// the caller's io_context too, but not from inside the callback (it waits for a render in
// progress). After Stop() returns the callback is not called again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "strata/status.h"

namespace boost::asio {
class io_context;
}

namespace strata::server {

struct HttpEndpointOptions {
  std::string address = "127.0.0.1";  // a numeric IPv4 or IPv6 address; local by default
  uint16_t port = 0;                  // 0: the kernel picks a free port (see port())
};

class HttpEndpoint {
 public:
  using RenderFn = std::function<std::string()>;

  // Binds and serves on a thread of its own.
  static Result<std::unique_ptr<HttpEndpoint>> Start(const HttpEndpointOptions& options,
                                                     RenderFn render);
  // Binds and serves on `io`, which the caller runs (and keeps alive until its handlers have
  // finished, i.e. until run() returns or the io_context is destroyed).
  static Result<std::unique_ptr<HttpEndpoint>> StartOn(boost::asio::io_context& io,
                                                       const HttpEndpointOptions& options,
                                                       RenderFn render);
  ~HttpEndpoint();  // Stop()
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // The bound port (the one the kernel chose when options.port was 0).
  uint16_t port() const { return port_; }

  // Closes the listening socket and every connection. With its own thread, joins it. Idempotent.
  void Stop();

  struct State;  // the acceptor, the connections and the callback (http_endpoint.cc)

 private:
  HttpEndpoint(std::shared_ptr<State> state, uint16_t port);
  static Result<std::unique_ptr<HttpEndpoint>> Open(boost::asio::io_context& io,
                                                    const HttpEndpointOptions& options,
                                                    RenderFn render);

  std::shared_ptr<State> state_;  // shared with the handlers in flight
  uint16_t port_ = 0;
  std::unique_ptr<boost::asio::io_context> own_io_;  // Start: the io_context `thread_` runs
  std::thread thread_;
};

}  // namespace strata::server
