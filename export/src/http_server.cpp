// SPDX-License-Identifier: MIT
// HttpServer on GNU libmicrohttpd (see http_server.hpp).
//
// Thread model: after construction one thread does everything. It sleeps in
// epoll_wait on libmicrohttpd's epoll descriptor and on an eventfd that
// stop() writes, then calls MHD_run(), which accepts, reads, runs handlers
// and writes without blocking. This is the "external epoll" mode of the
// libmicrohttpd manual (MHD_USE_EPOLL without an internal polling thread,
// MHD_DAEMON_INFO_EPOLL_FD, never sleeping past MHD_get_timeout()). Every
// libmicrohttpd callback (accept policy, connection started/closed, request,
// request completed) therefore runs on this one thread: the per-connection
// state below needs no lock or atomic, and a socket shut down for its
// deadline is always still open (libmicrohttpd closes it on this thread too,
// so its number cannot have been reused). The handoffs to and from other
// threads are the thread's creation and, in stop(), the eventfd and join().
//
// Limits. An event-driven server spends a descriptor and a small buffer on
// a silent or slow client, not a thread; these bound the rest:
//  - max_connections: counted from libmicrohttpd's connection notifications;
//    one more is refused by the accept policy callback, and libmicrohttpd
//    then closes it straight after accept(). MHD_OPTION_CONNECTION_LIMIT is
//    set above that: on reaching it libmicrohttpd stops polling the
//    listening socket, which would leave new clients hanging in the backlog.
//  - header_timeout: libmicrohttpd's own timeout restarts with every byte
//    received, so a client sending a header byte a second never trips it.
//    Here a new connection must deliver its whole request (headers, and a
//    body if it sends one) within header_timeout of its accept, or its
//    socket is shut down; libmicrohttpd reads end-of-stream and closes it.
//  - idle_timeout: the same deadline for the next request of a kept-alive
//    connection, counted from the end of the previous reply; also
//    MHD_OPTION_CONNECTION_TIMEOUT (whole seconds), which closes a connection
//    with no traffic at all, such as a client that stops reading its reply.
#include "http_server.hpp"

#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace percore::detail {
namespace {

using Clock = std::chrono::steady_clock;

struct Connection;
using Deadlines = std::multimap<Clock::time_point, Connection*>;

struct Connection {
    int fd;
    Deadlines::iterator deadline;
    bool has_deadline = false;
};

// A request's state for libmicrohttpd's repeated handler calls: set at the
// first (headers complete); the reply goes out at the last (whole request in).
char headers_seen;

void free_body(void* body) { delete static_cast<std::string*>(body); }

}  // namespace

std::string_view HttpRequest::header(const char* name) const noexcept {
    const char* v = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, name);
    return v != nullptr ? std::string_view(v) : std::string_view();
}

struct HttpServer::Impl {
    HttpServerOptions opt;
    HttpRoutes routes;  // read-only once the thread runs
    int listen_fd = -1;
    int family = AF_INET;
    std::uint16_t port = 0;
    MHD_Daemon* daemon = nullptr;
    int epoll_fd = -1;
    int wake_fd = -1;
    std::thread thread;
    // Server thread only (and stop() after joining it).
    std::size_t open = 0;
    Deadlines deadlines;

    Impl(HttpServerOptions o, HttpRoutes r) : opt(std::move(o)), routes(std::move(r)) {}
    ~Impl() { shutdown(); }

    std::string where() const {
        const std::string host = opt.host.find(':') != std::string::npos ? "[" + opt.host + "]" : opt.host;
        return host + ":" + std::to_string(opt.port);
    }
    [[noreturn]] void fail(int err, const std::string& what) const {
        throw std::system_error(err, std::generic_category(), opt.owner + ": " + what);
    }

    void bind_and_listen();
    void start();
    void run();
    void shutdown();

    void set_deadline(Connection& c, Clock::time_point at) {
        clear_deadline(c);
        c.deadline = deadlines.emplace(at, &c);
        c.has_deadline = true;
    }
    void clear_deadline(Connection& c) noexcept {
        if (!c.has_deadline) return;
        deadlines.erase(c.deadline);
        c.has_deadline = false;
    }
    // Shuts down the sockets whose deadline has passed; libmicrohttpd sees
    // end-of-stream on its next read and closes them (notifying CLOSED).
    void expire(Clock::time_point now) noexcept {
        while (!deadlines.empty() && deadlines.begin()->first <= now) {
            Connection* c = deadlines.begin()->second;
            clear_deadline(*c);
            ::shutdown(c->fd, SHUT_RDWR);
        }
    }
    // How long the loop may sleep: until libmicrohttpd's next timeout or
    // the next deadline, whichever comes first; -1 when there is neither.
    int wait_ms(Clock::time_point now) {
        long long ms = -1;
        MHD_UNSIGNED_LONG_LONG t = 0;
        if (MHD_get_timeout(daemon, &t) == MHD_YES) ms = t > INT_MAX ? INT_MAX : static_cast<long long>(t);
        if (!deadlines.empty()) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadlines.begin()->first - now).count();
            const long long d = left < 0 ? 0 : left > INT_MAX ? INT_MAX : left;
            ms = ms < 0 ? d : std::min(ms, d);
        }
        return static_cast<int>(ms);
    }

    static Connection* connection_of(MHD_Connection* c) {
        const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return info != nullptr ? static_cast<Connection*>(info->socket_context) : nullptr;
    }

    static MHD_Result accept_policy(void* cls, const sockaddr*, socklen_t) {
        const Impl* im = static_cast<Impl*>(cls);
        return im->open < im->opt.max_connections ? MHD_YES : MHD_NO;
    }

    static void on_connection(void* cls, MHD_Connection* c, void** context, MHD_ConnectionNotificationCode code) {
        Impl* im = static_cast<Impl*>(cls);
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
            ++im->open;
            const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
            if (info == nullptr) return;
            try {
                auto conn = std::make_unique<Connection>(Connection{info->connect_fd, {}});
                im->set_deadline(*conn, Clock::now() + im->opt.header_timeout);
                *context = conn.release();
            } catch (...) {
                ::shutdown(info->connect_fd, SHUT_RDWR);  // out of memory: drop it rather than leave it unbounded
            }
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
            --im->open;
            if (auto* conn = static_cast<Connection*>(*context)) {
                im->clear_deadline(*conn);
                delete conn;
                *context = nullptr;
            }
        }
    }

    static void on_completed(void* cls, MHD_Connection* c, void**, MHD_RequestTerminationCode toe) {
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) return;  // the connection is being closed
        Impl* im = static_cast<Impl*>(cls);
        if (Connection* conn = connection_of(c)) {
            try {
                im->set_deadline(*conn, Clock::now() + im->opt.idle_timeout);
            } catch (...) {
                ::shutdown(conn->fd, SHUT_RDWR);
            }
        }
    }

    HttpReply dispatch(MHD_Connection* c, std::string_view method, std::string_view path) const {
        const auto route = routes.find(path);
        if (route == routes.end()) return {MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", "Not Found\n"};
        try {
            return route->second(HttpRequest{method, path, c});
        } catch (...) {
            return {MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", "Internal Server Error\n"};
        }
    }

    static MHD_Result queue(MHD_Connection* c, HttpReply reply) {
        auto body = std::make_unique<std::string>(std::move(reply.body));
        MHD_Response* res =
            MHD_create_response_from_buffer_with_free_callback_cls(body->size(), body->data(), &free_body, body.get());
        if (res == nullptr) return MHD_NO;  // libmicrohttpd closes the connection
        body.release();
        if (reply.status == MHD_HTTP_METHOD_NOT_ALLOWED)
            MHD_add_response_header(res, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        if (!reply.content_type.empty())
            MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
        const MHD_Result queued = MHD_queue_response(c, reply.status, res);
        MHD_destroy_response(res);  // the connection holds its own reference
        return queued;
    }

    // libmicrohttpd calls this once the headers are in, once per piece of
    // body, and once more when the request is complete (the manual's
    // MHD_AccessHandlerCallback). A reply queued at the first call makes it
    // close the connection afterwards (it will not read past an unread
    // body), so GET and HEAD are answered at the last call, and the
    // deadline holds until then; other methods are refused at once.
    static MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method, const char*,
                                 const char*, std::size_t* upload_size, void** request) {
        const std::string_view m = method;
        try {
            if (*request == nullptr) {
                *request = &headers_seen;
                if (m == MHD_HTTP_METHOD_GET || m == MHD_HTTP_METHOD_HEAD) return MHD_YES;
                return queue(c, {MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "Method Not Allowed\n"});
            }
            if (*upload_size != 0) {  // a body on a GET: read and ignored
                *upload_size = 0;
                return MHD_YES;
            }
            Impl* im = static_cast<Impl*>(cls);
            if (Connection* conn = connection_of(c)) im->clear_deadline(*conn);
            return queue(c, im->dispatch(c, m, url));
        } catch (...) {
            return MHD_NO;  // out of memory: libmicrohttpd closes the connection
        }
    }
};

void HttpServer::Impl::bind_and_listen() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    const std::string service = std::to_string(opt.port);
    addrinfo* found = nullptr;
    if (const int rc = getaddrinfo(opt.host.empty() ? nullptr : opt.host.c_str(), service.c_str(), &hints, &found);
        rc != 0) {
        if (rc == EAI_SYSTEM) fail(errno, "cannot resolve " + where());
        throw std::runtime_error(opt.owner + ": cannot resolve " + where() + ": " + gai_strerror(rc));
    }
    int err = EADDRNOTAVAIL;
    for (const addrinfo* a = found; a != nullptr && listen_fd < 0; a = a->ai_next) {
        const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        // REUSEADDR lets a restarted process bind while its old connections
        // linger in TIME_WAIT. Not REUSEPORT: a second server could then
        // share the port and take half of the scrapes.
        const int yes = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
            listen_fd = fd;
            family = a->ai_family;
        } else {
            err = errno;
            close(fd);
        }
    }
    freeaddrinfo(found);
    if (listen_fd < 0) fail(err, "cannot bind " + where());
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) fail(errno, "getsockname");
    port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(bound).sin6_port
                                             : reinterpret_cast<const sockaddr_in&>(bound).sin_port);
}

void HttpServer::Impl::start() {
    const auto idle_s = std::chrono::ceil<std::chrono::seconds>(opt.idle_timeout).count();
    const unsigned flags = MHD_USE_EPOLL | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
    daemon = MHD_start_daemon(flags, port, &accept_policy, this, &on_request, this,                         //
                              MHD_OPTION_LISTEN_SOCKET, listen_fd,                                          //
                              MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned>(opt.max_connections + 1),  //
                              MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(idle_s),                 //
                              MHD_OPTION_NOTIFY_CONNECTION, &on_connection, this,                           //
                              MHD_OPTION_NOTIFY_COMPLETED, &on_completed, this,                             //
                              MHD_OPTION_END);
    if (daemon == nullptr) {
        // libmicrohttpd closes the listening socket on its failure paths.
        listen_fd = -1;
        throw std::runtime_error(opt.owner + ": libmicrohttpd failed to start on " + where());
    }
    listen_fd = -1;  // the daemon owns it now
    const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) fail(errno, "epoll_create1");
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0) fail(errno, "eventfd");
    for (const int fd : {info->epoll_fd, wake_fd}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) fail(errno, "epoll_ctl");
    }
    thread = std::thread([this] { run(); });
}

void HttpServer::Impl::run() {
    epoll_event ev[2];
    for (;;) {
        const int n = epoll_wait(epoll_fd, ev, 2, wait_ms(Clock::now()));
        if (n < 0 && errno != EINTR) return;  // cannot happen with valid descriptors
        for (int i = 0; i < n; ++i)
            if (ev[i].data.fd == wake_fd) return;
        MHD_run(daemon);
        expire(Clock::now());
    }
}

void HttpServer::Impl::shutdown() {
    if (thread.joinable()) {
        const std::uint64_t one = 1;
        (void)!write(wake_fd, &one, sizeof one);
        thread.join();
    }
    if (daemon != nullptr) {
        MHD_stop_daemon(daemon);  // closes every connection (notifying CLOSED) and the listening socket
        daemon = nullptr;
    }
    if (listen_fd >= 0) close(listen_fd);
    if (epoll_fd >= 0) close(epoll_fd);
    if (wake_fd >= 0) close(wake_fd);
    listen_fd = epoll_fd = wake_fd = -1;
}

HttpServer::HttpServer(HttpServerOptions opt, HttpRoutes routes) {
    if (opt.max_connections == 0 || opt.max_connections >= UINT_MAX)
        throw std::invalid_argument(opt.owner + ": max_connections must be between 1 and " +
                                    std::to_string(UINT_MAX - 1));
    if (opt.header_timeout <= std::chrono::milliseconds::zero() ||
        opt.idle_timeout <= std::chrono::milliseconds::zero())
        throw std::invalid_argument(opt.owner + ": header_timeout and idle_timeout must be positive");
    impl_ = std::make_unique<Impl>(std::move(opt), std::move(routes));
    impl_->bind_and_listen();
    impl_->start();
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::stop() {
    if (impl_) impl_->shutdown();
}

std::uint16_t HttpServer::port() const noexcept { return impl_->port; }

}  // namespace percore::detail
