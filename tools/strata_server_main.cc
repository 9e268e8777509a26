// strata-server: the cache daemon (cachestore/server/server.h).
//   strata-server [--config FILE] [--log FILE] [--log-level LEVEL]
// SIGTERM and SIGINT stop accepting, flush every tenant store and exit 0; SIGHUP reopens the log
// file (for logrotate). Prints "strata-server: listening on <path>" once clients can connect.
#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cxxopts.hpp>

#include "cachestore/server/http_endpoint.h"
#include "cachestore/server/server.h"
#include "cachestore/server/server_config.h"
#include "tools/data_paths.h"
#include "tools/malloc_tuning.h"

namespace {

void UseLog(const std::string& path, spdlog::level::level_enum level) {
  std::shared_ptr<spdlog::logger> logger;
  if (path.empty())
    logger = spdlog::stderr_color_mt("strata-server");
  else
    logger = std::make_shared<spdlog::logger>(
        "strata-server", std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false));
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::drop("strata-server");
  spdlog::set_default_logger(logger);
}

}  // namespace

int main(int argc, char** argv) {
  strata::tools::TuneMalloc();
  cxxopts::Options opts("strata-server", "strata's cache daemon on a local Unix socket");
  opts.add_options()("config", "server config (JSON)",
                     cxxopts::value<std::string>()->default_value(""))(
      "log", "log to this file instead of stderr (reopened on SIGHUP)",
      cxxopts::value<std::string>()->default_value(""))(
      "log-level", "trace, debug, info, warn, error",
      cxxopts::value<std::string>()->default_value("info"))("h,help", "this help");
  cxxopts::ParseResult args;
  try {
    args = opts.parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strata-server: %s\n%s", e.what(), opts.help().c_str());
    return 2;
  }
  if (args.count("help")) {
    std::printf("%s\nDefault config: configs/server/default.json (found like strata's configs).\n",
                opts.help().c_str());
    return 0;
  }
  const std::string log_path = args["log"].as<std::string>();
  const auto level = spdlog::level::from_str(args["log-level"].as<std::string>());
  try {
    UseLog(log_path, level);
  } catch (const spdlog::spdlog_ex& e) {
    std::fprintf(stderr, "strata-server: cannot open log %s: %s\n", log_path.c_str(), e.what());
    return 2;
  }

  // Signals are taken synchronously by this thread (sigwait): block them before any thread
  // starts, so the server's threads inherit the mask and never run a handler.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::string config_path = args["config"].as<std::string>();
  if (config_path.empty()) config_path = strata::tools::DataPath("configs/server/default.json");
  auto config = strata::server::LoadServerConfig(config_path);
  if (!config.ok()) {
    spdlog::error("{}", config.status().ToString());
    std::fprintf(stderr, "strata-server: %s\n", config.status().ToString().c_str());
    return 2;
  }
  spdlog::info("config {}: {}", config_path, strata::server::DescribeServerConfig(*config));
  const std::string socket_path = config->socket_path;
  const uint16_t metrics_port = config->metrics_port;
  auto server = strata::server::Server::Start(std::move(*config));
  if (!server.ok()) {
    spdlog::error("start: {}", server.status().ToString());
    std::fprintf(stderr, "strata-server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  // Metrics in the Prometheus text format on a loopback port (0: off).
  std::unique_ptr<strata::server::HttpEndpoint> http;
  if (metrics_port != 0) {
    strata::server::HttpEndpointOptions ho;
    ho.port = metrics_port;
    strata::server::Server* srv = server->get();
    auto h = strata::server::HttpEndpoint::Start(
        ho, [srv] { return srv->metrics().RenderPrometheus(srv->TenantViews()); });
    if (!h.ok()) {
      spdlog::error("metrics endpoint on port {}: {}", metrics_port, h.status().ToString());
      std::fprintf(stderr, "strata-server: metrics endpoint on port %u: %s\n", metrics_port,
                   h.status().ToString().c_str());
      return 1;
    }
    http = std::move(h).value();
    std::printf("strata-server: metrics on http://127.0.0.1:%u/metrics\n", http->port());
    spdlog::info("metrics on http://127.0.0.1:{}/metrics", http->port());
  }
  std::printf("strata-server: listening on %s\n", socket_path.c_str());
  std::fflush(stdout);
  spdlog::info("listening on {}", socket_path);

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      if (!log_path.empty()) {
        try {
          UseLog(log_path, level);
          spdlog::info("log reopened");
        } catch (const spdlog::spdlog_ex& e) {
          std::fprintf(stderr, "strata-server: cannot reopen log: %s\n", e.what());
        }
      }
      continue;
    }
    spdlog::info("signal {}: stopping (flushing every tenant store)", sig);
    break;
  }
  if (http) http->Stop();
  strata::Status s = (*server)->Stop();
  server->reset();
  if (!s.ok()) {
    spdlog::error("stop: {}", s.ToString());
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}
