// SPDX-License-Identifier: MIT
// The telemetry socket: SOCK_SEQPACKET listener, one thread per client.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <list>
#include <system_error>
#include <thread>
#include <vector>

#include "percore/export/telemetry.hpp"

namespace percore {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A client past max_clients is kept this long at most to be told why (the
// stock client needs its requests answered to exit without a traceback);
// at most kMaxRefused of them at a time, any more are closed at once.
constexpr milliseconds kRefusedLinger = std::chrono::seconds(30);
constexpr std::size_t kMaxRefused = 16;

[[noreturn]] void fail(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

// mkdir -p with mode 0700 for the directories it creates. Returns whether it
// created `dir` itself (not only found it).
bool make_dirs(const std::string& dir) {
    bool created = false;
    for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
        if (pos != dir.size() && dir[pos] != '/') continue;
        const std::string part = dir.substr(0, pos);
        created = mkdir(part.c_str(), 0700) == 0;
        if (!created && errno != EEXIST) fail("percore telemetry: mkdir " + part);
    }
    return created;
}

std::string parent_dir(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

TelemetryOptions with_defaults(TelemetryOptions opt) {
    if (opt.prefix.empty()) opt.prefix = "percore-" + std::to_string(getpid());
    if (opt.path.empty()) opt.path = telemetry_socket_path(opt.prefix);
    return opt;
}

// Milliseconds left of `limit` since `start`, for poll(); -1 (no limit) for a
// zero limit, 0 once it has passed.
int poll_timeout(Clock::time_point start, milliseconds limit) {
    if (limit.count() <= 0) return -1;
    const auto left = limit - std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    return static_cast<int>(std::clamp<milliseconds::rep>(left.count(), 0, INT_MAX));
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
    struct Refused {
        int fd;
        Clock::time_point since;
    };
    const TelemetryProtocol& protocol;
    int listen_fd = -1;
    int wake[2] = {-1, -1};  // written once by stop(); every poll() watches the read end
    std::string made_dir;    // the socket's directory if the constructor created it
    std::thread acceptor;
    std::list<Client> clients;  // touched by the acceptor thread, then by stop() after joining it

    explicit Impl(const TelemetryProtocol& p) : protocol(p) {}
    ~Impl() {  // stop() closed these already, unless the constructor failed half-way
        for (int fd : {listen_fd, wake[0], wake[1]})
            if (fd >= 0) close(fd);
    }

    // Waits until `fd` has `events` (or hung up). False when stop() was
    // called or the client stayed quiet for idle_timeout.
    bool wait_for(int fd, short events) {
        const auto start = Clock::now();
        const milliseconds idle = protocol.options().idle_timeout;
        for (;;) {
            const int timeout = poll_timeout(start, idle);
            if (timeout == 0) return false;
            pollfd p[2] = {{fd, events, 0}, {wake[0], POLLIN, 0}};
            const int r = poll(p, 2, timeout);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 || p[1].revents) return false;
            if (r > 0) return true;  // on POLLHUP or POLLERR the following recv/send reports it
        }
    }

    // Client sockets are non-blocking: a client that stops reading its
    // replies must not hold a thread past idle_timeout or stop().
    bool send_msg(int fd, const std::string& msg) {
        for (;;) {
            if (send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) >= 0) return true;
            if (errno == EINTR) continue;
            if ((errno != EAGAIN && errno != EWOULDBLOCK) || !wait_for(fd, POLLOUT)) return false;  // EPIPE: gone
        }
    }

    void serve(int fd) {
        const auto& opt = protocol.options();
        std::vector<char> buf(opt.max_input_len + 1);
        if (!send_msg(fd, protocol.greeting())) return;
        for (;;) {
            if (!wait_for(fd, POLLIN)) return;
            // MSG_TRUNC: the return value is the message's real length, so
            // an oversized request is detected, not silently cut.
            const ssize_t n = recv(fd, buf.data(), buf.size(), MSG_TRUNC);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
            if (n <= 0) return;  // 0: client closed
            const auto len = static_cast<std::size_t>(n);
            const std::string out = len > opt.max_input_len ? protocol.reject(len)
                                                            : protocol.reply(std::string_view(buf.data(), len));
            if (!send_msg(fd, out)) return;
        }
    }

    // Answers one request of a refused client without blocking the acceptor.
    // False when the client hung up or cannot take the reply.
    bool answer_refused(int fd, std::vector<char>& buf) {
        const ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        if (n == 0) return false;
        const std::string out = protocol.busy_reply(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        return send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0;
    }

    void reap() {
        for (auto it = clients.begin(); it != clients.end();) {
            if (it->done.load(std::memory_order_acquire)) {
                it->thread.join();
                it = clients.erase(it);
            } else {
                ++it;
            }
        }
    }

    void accept_one(std::vector<Refused>& refused) {
        const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            // Out of descriptors the listener stays readable: pause rather
            // than spin (stop() still wakes us).
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                pollfd p{wake[0], POLLIN, 0};
                poll(&p, 1, 100);
            }
            return;
        }
        reap();
        if (clients.size() < protocol.options().max_clients) {
            Client& c = clients.emplace_back();
            try {
                c.thread = std::thread([this, fd, &c] {
                    serve(fd);
                    close(fd);
                    c.done.store(true, std::memory_order_release);
                });
            } catch (const std::system_error&) {  // no thread to be had: drop this client, keep serving
                clients.pop_back();
                close(fd);
            }
            return;
        }
        // Past the limit: say so in a greeting-shaped reply rather than
        // closing unannounced, which dpdk-telemetry.py reports as a traceback.
        const std::string hello = protocol.busy_greeting();
        if (refused.size() >= kMaxRefused || send(fd, hello.data(), hello.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
            close(fd);
            return;
        }
        refused.push_back({fd, Clock::now()});
    }

    void accept_loop() {
        const milliseconds idle = protocol.options().idle_timeout;
        const milliseconds linger = idle.count() > 0 ? std::min(idle, kRefusedLinger) : kRefusedLinger;
        std::vector<Refused> refused;
        std::vector<pollfd> p;
        // Only the command name of a refused client's request matters.
        std::vector<char> buf(128);
        for (;;) {
            p.assign({{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}});
            int timeout = -1;
            for (const auto& r : refused) {
                p.push_back({r.fd, POLLIN, 0});
                const int t = poll_timeout(r.since, linger);
                timeout = timeout < 0 ? t : std::min(timeout, t);
            }
            if (poll(p.data(), p.size(), timeout) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (p[1].revents) break;
            for (std::size_t i = refused.size(); i-- > 0;) {
                const bool keep = poll_timeout(refused[i].since, linger) != 0 &&
                                  (!p[2 + i].revents || answer_refused(refused[i].fd, buf));
                if (!keep) {
                    close(refused[i].fd);
                    refused.erase(refused.begin() + static_cast<std::ptrdiff_t>(i));
                }
            }
            if (p[0].revents) accept_one(refused);
        }
        for (const auto& r : refused) close(r.fd);
    }
};

TelemetryServer::TelemetryServer(Registry& reg, TelemetryOptions opt)
    : protocol_(reg, with_defaults(opt)), path_(protocol_.options().path), impl_(std::make_unique<Impl>(protocol_)) {
    const sockaddr_un addr = address(path_);
    const std::string dir = parent_dir(path_);
    if (opt.path.empty()) {
        if (make_dirs(dir)) impl_->made_dir = dir;
    } else {
        // Only the default runtime directory is ours to create: a missing
        // directory in an explicit path is more likely a typo or a volume
        // not mounted yet than a request to make it.
        struct stat ds{};
        if (stat(dir.c_str(), &ds) != 0) fail("percore telemetry: socket path " + path_ + ": directory " + dir);
        if (!S_ISDIR(ds.st_mode)) {
            errno = ENOTDIR;
            fail("percore telemetry: socket path " + path_ + ": " + dir);
        }
    }
    bool bound = false;
    try {
        struct stat st{};
        if (lstat(path_.c_str(), &st) == 0) {
            // A live server answers; a socket nobody listens on is stale.
            // Non-blocking, so a server with a full backlog counts as live
            // instead of hanging this connect().
            const int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            const bool live =
                probe >= 0 &&
                (connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 || errno == EAGAIN);
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
        bound = true;
        // Owner only, set before listen() so no one can connect in between.
        if (chmod(path_.c_str(), 0600) != 0 || listen(impl_->listen_fd, 16) != 0)
            fail("percore telemetry: listen " + path_);
        impl_->acceptor = std::thread([im = impl_.get()] { im->accept_loop(); });
    } catch (...) {
        // ~Impl closes the descriptors; leave no socket file or directory behind.
        const int e = errno;
        if (bound) unlink(path_.c_str());
        if (!impl_->made_dir.empty()) rmdir(impl_->made_dir.c_str());
        errno = e;
        throw;
    }
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
    impl_->wake[0] = impl_->wake[1] = -1;
    unlink(path_.c_str());
    // Only the directory this server made, and only if nothing else was put
    // in it since (rmdir refuses a non-empty one).
    if (!impl_->made_dir.empty()) rmdir(impl_->made_dir.c_str());
    impl_->made_dir.clear();
}

}  // namespace percore
