// The telemetry socket: SOCK_SEQPACKET listener, one thread per client.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <list>
#include <system_error>
#include <thread>
#include <vector>

#include "percore/export/telemetry.hpp"

namespace percore {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

// mkdir -p with mode 0700 for the directories it creates.
void make_dirs(const std::string& dir) {
    for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
        if (pos != dir.size() && dir[pos] != '/') continue;
        const std::string part = dir.substr(0, pos);
        if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) fail("percore telemetry: mkdir " + part);
    }
}

sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) {
        errno = ENAMETOOLONG;
        fail("percore telemetry: socket path too long: " + path);
    }
    path.copy(a.sun_path, path.size());
    return a;
}

}  // namespace

struct TelemetryServer::Impl {
    struct Client {
        std::thread thread;
        std::atomic<bool> done{false};
    };
    const TelemetryProtocol& protocol;
    int listen_fd = -1;
    int wake[2] = {-1, -1};  // written once by stop(); every poll() watches the read end
    std::thread acceptor;
    std::list<Client> clients;  // touched by the acceptor thread, then by stop() after joining it

    explicit Impl(const TelemetryProtocol& p) : protocol(p) {}

    void serve(int fd) {
        const auto& opt = protocol.options();
        const std::string hello = protocol.greeting();
        std::vector<char> buf(opt.max_input_len + 1);
        if (send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) < 0) return;
        for (;;) {
            pollfd p[2] = {{fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
            if (poll(p, 2, -1) < 0) {
                if (errno == EINTR) continue;
                return;
            }
            if (p[1].revents) return;
            // MSG_TRUNC: the return value is the message's real length, so
            // an oversized request is detected, not silently cut.
            const ssize_t n = recv(fd, buf.data(), buf.size(), MSG_TRUNC);
            if (n <= 0) return;  // 0: client closed
            const auto len = static_cast<std::size_t>(n);
            const std::string out = len > opt.max_input_len ? protocol.reject(len)
                                                            : protocol.reply(std::string_view(buf.data(), len));
            if (send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) return;  // EPIPE: gone mid-reply
        }
    }

    void accept_loop() {
        const std::size_t max_clients = protocol.options().max_clients;
        for (;;) {
            pollfd p[2] = {{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
            if (poll(p, 2, -1) < 0) {
                if (errno == EINTR) continue;
                return;
            }
            if (p[1].revents) return;
            const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            for (auto it = clients.begin(); it != clients.end();) {  // reap finished clients
                if (it->done.load(std::memory_order_acquire)) {
                    it->thread.join();
                    it = clients.erase(it);
                } else {
                    ++it;
                }
            }
            if (clients.size() >= max_clients) {
                close(fd);
                continue;
            }
            Client& c = clients.emplace_back();
            c.thread = std::thread([this, fd, &c] {
                serve(fd);
                close(fd);
                c.done.store(true, std::memory_order_release);
            });
        }
    }
};

TelemetryServer::TelemetryServer(Registry& reg, TelemetryOptions opt)
    : protocol_(reg, [&] {
          if (opt.prefix.empty()) opt.prefix = "percore-" + std::to_string(getpid());
          if (opt.path.empty()) opt.path = telemetry_socket_path(opt.prefix);
          return opt;
      }()),
      path_(protocol_.options().path),
      impl_(std::make_unique<Impl>(protocol_)) {
    make_dirs(path_.substr(0, path_.rfind('/')));
    const sockaddr_un addr = address(path_);
    struct stat st{};
    if (lstat(path_.c_str(), &st) == 0) {
        // A live server answers; a socket nobody listens on is stale.
        const int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        const bool live = probe >= 0 && connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
        if (probe >= 0) close(probe);
        if (live) {
            errno = EADDRINUSE;
            fail("percore telemetry: " + path_ + " is served by another process");
        }
        if (!S_ISSOCK(st.st_mode)) {
            errno = EEXIST;
            fail("percore telemetry: " + path_ + " exists and is not a socket");
        }
        unlink(path_.c_str());
    }
    if (pipe2(impl_->wake, O_CLOEXEC) != 0) fail("percore telemetry: pipe");
    impl_->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (impl_->listen_fd < 0) fail("percore telemetry: socket");
    if (bind(impl_->listen_fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        fail("percore telemetry: bind " + path_);
    // Owner only, set before listen() so no one can connect in between.
    if (chmod(path_.c_str(), 0600) != 0 || listen(impl_->listen_fd, 16) != 0) {
        const int e = errno;
        unlink(path_.c_str());
        errno = e;
        fail("percore telemetry: listen " + path_);
    }
    impl_->acceptor = std::thread([im = impl_.get()] { im->accept_loop(); });
}

TelemetryServer::~TelemetryServer() { stop(); }

void TelemetryServer::stop() {
    if (!impl_ || impl_->listen_fd < 0) return;
    const char b = 1;
    (void)!write(impl_->wake[1], &b, 1);
    if (impl_->acceptor.joinable()) impl_->acceptor.join();
    for (auto& c : impl_->clients) c.thread.join();
    impl_->clients.clear();
    close(impl_->listen_fd);
    impl_->listen_fd = -1;
    close(impl_->wake[0]);
    close(impl_->wake[1]);
    unlink(path_.c_str());
}

}  // namespace percore
