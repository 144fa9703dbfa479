/* tern.hpp: tern for C++17, header-only, over the C API of tern.h (written by hand;
 * tern.h is generated).
 *
 *   tern::Manager mgr;                                    // owns a tern_mgr
 *   tern::Remote remote = mgr.remote();                   // for other threads
 *   mgr.http_listen("http://127.0.0.1:8000", [&](tern::Conn c, tern::Event ev) {
 *       if (ev.type != tern::EventType::http_msg) return;
 *       tern::HttpMsg h = ev.http();
 *       if (h.uri() == "/api") {
 *           tern::Token t = c.defer(h);                   // a worker answers later:
 *           pool.push([&remote, t] { remote.respond(t, 200, nullptr, tern::Bytes::copy("{}")); });
 *       } else {
 *           c.reply(200, "Content-Type: text/plain\r\n", "hello\n");
 *       }
 *   });
 *   tern::Timer tick = mgr.every(1000, [&] { ... });      // cancelled when `tick` goes
 *   while (mgr.poll(100)) {}
 *
 * OWNERSHIP. The owners are move-only RAII types: Manager (tern_mgr), Remote
 * (tern_remote), Bytes (one reference of a tern_bytes) and Timer (a timer and its
 * callback). Where the C API says `take`, the C++ API takes a Bytes by value: the call
 * consumes it, whatever it returns, so the transfer is visible at the call site
 * (`remote.send(id, std::move(b))`, or a temporary). Everything else is borrowed:
 * Conn, HttpMsg, WsMsg, Event and every std::string_view tern hands out are views,
 * valid during the callback that received them (a ConnId and a Token are plain values
 * that stay safe to use forever; tern_conn_lookup / Manager::lookup finds the Conn again).
 *
 * ERRORS follow the C API's two kinds of function. Where C returns a handle, an id or a
 * token (NULL / 0 / {0,0} on failure, tern_last_error() saying why), C++ returns the
 * object and throws tern::Error on failure: Manager(), remote(), listen and connect,
 * timers, Bytes::copy, Conn::defer. Where C returns a status code, C++ returns a
 * tern::Status: true when it worked, code() the TERN_E* value otherwise. Nothing else
 * throws, and nothing here ever lets an exception into tern: a handler or timer that
 * throws is caught at the boundary, the exception is logged (set_exception_log), and the
 * connection whose handler threw is closed at once (tern_close_now; a timer just goes on).
 *
 * LIFETIMES, the one rule: handlers and timer callbacks belong to the Manager, and live
 * until after its last event. A listener's handler (and the handler every connection it
 * accepts inherits) is destroyed by ~Manager, after tern_mgr_free has delivered the final
 * TERN_EV_CLOSE events; an outgoing connection's handler is destroyed right after that
 * connection's CLOSE. A Timer may outlive its Manager or die first, in either order:
 * ~Timer cancels a live timer and destroys its callback; ~Manager detaches the timers
 * left and destroys their callbacks. So no handler or callback can run after it is gone.
 * What a handler captures by reference must outlive the Manager: declare it before.
 *
 * THREADS: as in C. Manager, Conn and Timer are loop-thread only (the thread that polls);
 * Remote and Bytes work from any thread.
 *
 * COST: a handler is stored once per listen/connect (one allocation); an event costs no
 * allocation: Conn and Event are two words each, passed by value, and the handler is
 * called through one virtual call. Remote::call allocates its function once per call
 * (it crosses threads). Bytes::from(std::string) hands a string to tern without copying.
 */
#ifndef TERN_HPP
#define TERN_HPP

#include "tern.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace tern {

using ConnId = tern_conn_id;
using Token = tern_http_token;

/* A tern_str as a string_view (empty for {NULL, 0}). */
inline std::string_view view(tern_str s) noexcept {
    return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view();
}

inline tern_str to_str(std::string_view v) noexcept { return tern_str{v.data(), v.size()}; }

/* The library's version, "MAJOR.MINOR.PATCH". */
inline std::string_view version() noexcept { return tern_version(); }

/* What tern_strerror says of a TERN_E* code. */
inline const char *strerror(int code) noexcept { return tern_strerror(code); }

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                 */

/* Thrown where C would return NULL, 0 or {0,0}: code() is tern_last_error(),
 * os_error() tern_last_os_error() (the errno behind it, 0 if none). */
class Error : public std::runtime_error {
public:
    Error(const char *call, int code, int os_error)
        : std::runtime_error(describe(call, code, os_error)), code_(code), os_(os_error) {}
    int code() const noexcept { return code_; }
    int os_error() const noexcept { return os_; }

private:
    static std::string describe(const char *call, int code, int os) {
        std::string s = std::string(call) + ": " + tern_strerror(code);
        if (os != 0) s += " (errno " + std::to_string(os) + ")";
        return s;
    }
    int code_;
    int os_;
};

/* What a call that acts returned: TERN_OK or a count (ok, true), or a TERN_E* code. */
class Status {
public:
    constexpr explicit Status(int rc) noexcept : rc_(rc) {}
    constexpr bool ok() const noexcept { return rc_ >= 0; }
    constexpr explicit operator bool() const noexcept { return ok(); }
    /* TERN_OK, a count (poll: callbacks run; publish: subscribers), or TERN_E*. */
    constexpr int code() const noexcept { return rc_; }
    const char *what() const noexcept { return tern_strerror(rc_ < 0 ? rc_ : TERN_OK); }
    constexpr bool operator==(int code) const noexcept { return rc_ == code; }
    constexpr bool operator!=(int code) const noexcept { return rc_ != code; }

private:
    int rc_;
};

/* A NUL-terminated string argument: a const char *, a std::string, or nullptr where
 * the C API allows NULL (headers). Borrowed for the call. */
class CStr {
public:
    CStr(const char *s) noexcept : p_(s) {}
    CStr(const std::string &s) noexcept : p_(s.c_str()) {}
    CStr(std::nullptr_t) noexcept : p_(nullptr) {}
    const char *get() const noexcept { return p_; }

private:
    const char *p_;
};

namespace detail {

[[noreturn]] inline void raise(const char *call) {
    int code = tern_last_error();
    int os = tern_last_os_error();
    throw Error(call, code, os);
}

template <class T> T *check(T *p, const char *call) {
    if (p == nullptr) raise(call);
    return p;
}

inline void (*exception_log)(const char *message) = nullptr;

/* Never throws: it is called where an exception must stop. */
inline void log_exception(const char *message) noexcept {
    if (exception_log) {
        exception_log(message);
    } else {
        std::fprintf(stderr, "tern.hpp: %s\n", message);
    }
}

inline void log_exception(const char *where, const char *what) noexcept {
    char line[512];
    std::snprintf(line, sizeof line, "%s threw: %s", where, what);
    log_exception(line);
}

} // namespace detail

/* Where exceptions caught at the boundary are reported (one line each, any thread);
 * nullptr: stderr. Set it once, before the loop starts. */
inline void set_exception_log(void (*log)(const char *message)) noexcept { detail::exception_log = log; }

/* tern_log_set: the process-wide log level (TERN_LOG_*) and sink (nullptr: stderr). */
inline void set_log(int level, tern_log_fn fn = nullptr, void *ud = nullptr) noexcept { tern_log_set(level, fn, ud); }

/* ------------------------------------------------------------------------------------ */
/* Bytes: one reference of an immutable, reference-counted buffer. Any thread.            */

class Bytes {
public:
    Bytes() noexcept = default;
    Bytes(Bytes &&o) noexcept : b_(o.release()) {}
    Bytes &operator=(Bytes &&o) noexcept {
        if (this != &o) {
            tern_bytes_release(b_);
            b_ = o.release();
        }
        return *this;
    }
    Bytes(const Bytes &) = delete;
    Bytes &operator=(const Bytes &) = delete;
    ~Bytes() { tern_bytes_release(b_); }

    /* A copy of `s`. */
    static Bytes copy(std::string_view s) {
        return adopt(detail::check(tern_bytes_copy(s.data(), s.size()), "tern_bytes_copy"));
    }
    /* `s` itself, without copying: the string moves to the heap and is deleted when the
     * last reference is gone (after its last byte was written, on any thread). */
    static Bytes from(std::string s) {
        auto *held = new std::string(std::move(s));
        tern_bytes *b = tern_bytes_wrap(held->data(), held->size(), &delete_string, held);
        if (b == nullptr) {
            delete held; /* nothing was taken */
            detail::raise("tern_bytes_wrap");
        }
        return adopt(b);
    }
    /* tern_bytes_wrap: `fn(ctx, data, len)` runs exactly once, when the last reference
     * is gone. */
    static Bytes wrap(void *data, size_t len, tern_free_fn fn, void *ctx) {
        return adopt(detail::check(tern_bytes_wrap(data, len, fn, ctx), "tern_bytes_wrap"));
    }
    /* A zero-filled buffer of `len` bytes; `*data_out` may be written until the buffer
     * is first shared or handed to tern. */
    static Bytes alloc(size_t len, char **data_out) {
        void *p = nullptr;
        Bytes b = adopt(detail::check(tern_bytes_alloc(len, &p), "tern_bytes_alloc"));
        *data_out = static_cast<char *>(p);
        return b;
    }
    /* Takes over one reference the caller holds (from C code). */
    static Bytes adopt(tern_bytes *raw) noexcept {
        Bytes b;
        b.b_ = raw;
        return b;
    }

    /* One more reference to the same bytes (broadcast without copying). */
    Bytes share() const noexcept { return adopt(tern_bytes_share(b_)); }
    const char *data() const noexcept { return static_cast<const char *>(tern_bytes_data(b_)); }
    size_t size() const noexcept { return tern_bytes_len(b_); }
    std::string_view view() const noexcept { return b_ ? std::string_view(data(), size()) : std::string_view(); }
    explicit operator bool() const noexcept { return b_ != nullptr; }
    tern_bytes *get() const noexcept { return b_; }
    /* Gives up the reference (to hand it to a C `take` argument). */
    tern_bytes *release() noexcept { return std::exchange(b_, nullptr); }

private:
    static void delete_string(void *ctx, void *, size_t) { delete static_cast<std::string *>(ctx); }
    tern_bytes *b_ = nullptr;
};

/* ------------------------------------------------------------------------------------ */
/* Views handed to handlers: valid during the callback.                                   */

/* A URL-decoded variable of a query string or form body; nullopt if absent or bad. */
inline std::optional<std::string> var(std::string_view buf, CStr name) {
    std::string out(64, '\0');
    for (;;) {
        int n = tern_http_var(to_str(buf), name.get(), out.data(), out.size());
        if (n >= 0) {
            out.resize(static_cast<size_t>(n));
            return out;
        }
        if (n != TERN_EFULL || out.size() > buf.size()) return std::nullopt;
        out.resize(buf.size() + 1); /* a value is never longer than the input */
    }
}

/* Glob routing: `?` one character, `*` within a segment, `**` across. */
inline bool match(std::string_view uri, CStr pattern) noexcept {
    return tern_http_match(to_str(uri), pattern.get()) == 1;
}

class HttpMsg {
public:
    explicit HttpMsg(const tern_http_msg *h) noexcept : h_(h) {}
    std::string_view method() const noexcept { return view(tern_http_method(h_)); }
    std::string_view uri() const noexcept { return view(tern_http_uri(h_)); }
    std::string_view query() const noexcept { return view(tern_http_query(h_)); }
    std::string_view body() const noexcept { return view(tern_http_body(h_)); }
    std::string_view header(CStr name) const noexcept { return view(tern_http_header(h_, name.get())); }
    int status() const noexcept { return tern_http_status(h_); }
    size_t header_count() const noexcept { return tern_http_header_count(h_); }
    /* The i-th header field (name, value); empty views past the end. */
    std::pair<std::string_view, std::string_view> header_at(size_t i) const noexcept {
        tern_str n{nullptr, 0}, v{nullptr, 0};
        tern_http_header_at(h_, i, &n, &v);
        return {view(n), view(v)};
    }
    std::optional<std::string> query_var(CStr name) const { return var(query(), name); }
    const tern_http_msg *get() const noexcept { return h_; }

private:
    const tern_http_msg *h_;
};

struct WsMsg {
    int op;                /* TERN_WS_TEXT, TERN_WS_BINARY, TERN_WS_PING, ... */
    std::string_view data;
};

enum class EventType : int {
    none = 0,
    error = TERN_EV_ERROR,
    open = TERN_EV_OPEN,
    connect = TERN_EV_CONNECT,
    accept = TERN_EV_ACCEPT,
    read = TERN_EV_READ,
    write = TERN_EV_WRITE,
    close = TERN_EV_CLOSE,
    http_msg = TERN_EV_HTTP_MSG,
    ws_open = TERN_EV_WS_OPEN,
    ws_msg = TERN_EV_WS_MSG,
    ws_ctl = TERN_EV_WS_CTL,
    wakeup = TERN_EV_WAKEUP,
    drain = TERN_EV_DRAIN,
    http_head = TERN_EV_HTTP_HEAD,
    http_body = TERN_EV_HTTP_BODY,
};

/* One event: its type and ev_data, read through the accessor its type calls for (an
 * accessor for another type returns an empty value). */
struct Event {
    EventType type;
    void *data;

    /* ERROR: the message. */
    std::string_view message() const noexcept {
        return type == EventType::error && data ? std::string_view(static_cast<const char *>(data)) : std::string_view();
    }
    /* READ: every unconsumed byte; WAKEUP: the bytes posted; HTTP_BODY: a piece. */
    std::string_view bytes() const noexcept {
        bool has = type == EventType::read || type == EventType::wakeup || type == EventType::http_body;
        return has ? view(*static_cast<const tern_str *>(data)) : std::string_view();
    }
    /* WRITE: bytes just written to the kernel. */
    size_t written() const noexcept { return type == EventType::write ? *static_cast<const size_t *>(data) : 0; }
    /* HTTP_MSG, HTTP_HEAD, WS_OPEN: the message (null view otherwise). */
    HttpMsg http() const noexcept {
        bool has = type == EventType::http_msg || type == EventType::http_head || type == EventType::ws_open;
        return HttpMsg(has ? static_cast<const tern_http_msg *>(data) : nullptr);
    }
    /* WS_MSG, WS_CTL: the message. */
    WsMsg ws() const noexcept {
        if (type != EventType::ws_msg && type != EventType::ws_ctl) return WsMsg{0, {}};
        const auto *m = static_cast<const tern_ws_msg *>(data);
        return WsMsg{m->op, view(m->data)};
    }
};

/* A connection (listener, accepted or outgoing): a view, valid during the callback. */
class Conn {
public:
    explicit Conn(tern_conn *c) noexcept : c_(c) {}
    explicit operator bool() const noexcept { return c_ != nullptr; }
    tern_conn *get() const noexcept { return c_; }
    ConnId id() const noexcept { return tern_conn_get_id(c_); }
    /* The connection with this id on the same manager (a null Conn if gone). */
    Conn lookup(ConnId id) const noexcept { return Conn(tern_conn_lookup(tern_conn_mgr(c_), id)); }

    /* Raw TCP */
    Status send(std::string_view data) noexcept { return Status(tern_send(c_, data.data(), data.size())); }
    Status send(Bytes take) noexcept { return Status(tern_send_bytes(c_, take.release())); }
    Status consume(size_t n) noexcept { return Status(tern_conn_consume(c_, n)); }
    size_t queued() const noexcept { return tern_conn_queued(c_); }
    Status close() noexcept { return Status(tern_close(c_)); }
    Status close_now() noexcept { return Status(tern_close_now(c_)); }
    int local_port() const noexcept { return tern_conn_local_port(c_); }
    std::string peer_addr() const {
        char buf[64];
        int n = tern_conn_peer_addr(c_, buf, sizeof buf);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }
    /* Inside ERROR: its TERN_E* code and errno. */
    int error_code() const noexcept { return tern_conn_error(c_); }
    int os_error() const noexcept { return tern_conn_os_error(c_); }

    /* HTTP server: answers, whole or streamed; deferral; static files; uploads */
    Status reply(int status, CStr headers, std::string_view body) noexcept {
        return Status(tern_http_reply(c_, status, headers.get(), body.data(), body.size()));
    }
    Status reply(int status, CStr headers, Bytes take) noexcept {
        return Status(tern_http_reply_bytes(c_, status, headers.get(), take.release()));
    }
    Status begin(int status, CStr headers = nullptr) noexcept { return Status(tern_http_begin(c_, status, headers.get())); }
    Status write(std::string_view data) noexcept { return Status(tern_http_write(c_, data.data(), data.size())); }
    Status write(Bytes take) noexcept { return Status(tern_http_write_bytes(c_, take.release())); }
    Status end() noexcept { return Status(tern_http_end(c_)); }
    /* Inside HTTP_MSG: the token a worker answers with (Remote::respond). Throws. */
    Token defer(const HttpMsg &h) {
        Token t = tern_http_defer(c_, h.get());
        if (t.conn == 0) detail::raise("tern_http_defer");
        return t;
    }
    Status serve_dir(const HttpMsg &h, CStr root) noexcept { return Status(tern_http_serve_dir(c_, h.get(), root.get())); }
    Status serve_prefix(const HttpMsg &h, CStr prefix, CStr root) noexcept {
        return Status(tern_http_serve_prefix(c_, h.get(), prefix.get(), root.get()));
    }
    Status serve_file(const HttpMsg &h, CStr path) noexcept { return Status(tern_http_serve_file(c_, h.get(), path.get())); }
    /* Inside HTTP_HEAD: take the body as HTTP_BODY pieces. */
    Status stream_body() noexcept { return Status(tern_http_stream_body(c_)); }

    /* HTTP client */
    Status request(CStr method, CStr target, CStr headers = nullptr, std::string_view body = {}) noexcept {
        return Status(tern_http_request(c_, method.get(), target.get(), headers.get(), body.data(), body.size()));
    }

    /* WebSocket */
    Status ws_upgrade(const HttpMsg &h, CStr headers = nullptr) noexcept {
        return Status(tern_ws_upgrade(c_, h.get(), headers.get()));
    }
    Status ws_send(int op, std::string_view data) noexcept { return Status(tern_ws_send(c_, op, data.data(), data.size())); }
    Status ws_send(int op, Bytes take) noexcept { return Status(tern_ws_send_bytes(c_, op, take.release())); }
    Status ws_close(int code = 1000, CStr reason = nullptr) noexcept { return Status(tern_ws_close(c_, code, reason.get())); }
    Status subscribe(CStr topic) noexcept { return Status(tern_ws_subscribe(c_, topic.get())); }
    Status unsubscribe(CStr topic) noexcept { return Status(tern_ws_unsubscribe(c_, topic.get())); }
    /* To every subscriber of `topic` on this connection's manager; code(): how many. */
    Status publish(CStr topic, int op, Bytes take) noexcept {
        return Status(tern_ws_publish(tern_conn_mgr(c_), topic.get(), op, take.release()));
    }

private:
    tern_conn *c_;
};

/* ------------------------------------------------------------------------------------ */
/* Internals: handlers and timers owned by the manager's core                             */

namespace detail {

struct Core;

/* A handler, stored once per listen/connect. */
struct Handler {
    Handler *prev = nullptr, *next = nullptr;
    Core *core = nullptr;
    bool one_conn = false; /* an outgoing connection's: destroyed after its CLOSE */
    virtual void call(Conn c, Event ev) = 0;
    virtual ~Handler() = default;
};

template <class F> struct HandlerOf final : Handler {
    explicit HandlerOf(F f) : fn(std::move(f)) {}
    void call(Conn c, Event ev) override { fn(c, ev); }
    F fn;
};

struct Callback {
    Callback *dead_next = nullptr; /* ~Manager's list of callbacks to destroy */
    virtual void call() = 0;
    virtual ~Callback() = default;
};

template <class F> struct CallbackOf final : Callback {
    explicit CallbackOf(F f) : fn(std::move(f)) {}
    void call() override { fn(); }
    F fn;
};

/* A timer's state, owned by its Timer; linked into the core while the manager lives. */
struct TimerState {
    TimerState *prev = nullptr, *next = nullptr;
    Core *core = nullptr;            /* null once the manager is gone */
    uint64_t id = 0;                 /* 0 once done or cancelled */
    bool repeat = false;
    bool running = false;            /* inside its callback */
    bool orphaned = false;           /* its Timer died during the callback */
    std::unique_ptr<Callback> fn;
};

/* Intrusive list helpers: a node is in at most one list. */
template <class T> void link(T *&head, T *n) noexcept {
    n->prev = nullptr;
    n->next = head;
    if (head) head->prev = n;
    head = n;
}

template <class T> void unlink(T *&head, T *n) noexcept {
    if (n->prev) n->prev->next = n->next;
    else if (head == n) head = n->next;
    if (n->next) n->next->prev = n->prev;
    n->prev = n->next = nullptr;
}

struct Core {
    tern_mgr *m = nullptr;
    Handler *handlers = nullptr;
    TimerState *timers = nullptr;
};

/* The one tern_handler of tern.hpp: calls the stored handler, stops exceptions. */
inline void on_event(tern_conn *c, int ev, void *data, void *user) noexcept {
    auto *h = static_cast<Handler *>(user);
    const char *what = nullptr;
    try {
        h->call(Conn(c), Event{static_cast<EventType>(ev), data});
    } catch (const std::exception &e) {
        what = e.what();
        log_exception("a tern handler", what);
    } catch (...) {
        what = "an exception that is not a std::exception";
        log_exception("a tern handler", what);
    }
    if (what != nullptr && ev != TERN_EV_CLOSE) {
        char line[96];
        std::snprintf(line, sizeof line, "closing connection %llu", static_cast<unsigned long long>(tern_conn_get_id(c)));
        log_exception(line);
        tern_close_now(c);
    }
    if (ev == TERN_EV_CLOSE && h->one_conn) {
        unlink(h->core->handlers, h);
        delete h;
    }
}

inline void on_timer(void *user) noexcept {
    auto *st = static_cast<TimerState *>(user);
    if (!st->fn) return;
    st->running = true;
    try {
        st->fn->call();
    } catch (const std::exception &e) {
        log_exception("a tern timer", e.what());
    } catch (...) {
        log_exception("a tern timer", "an exception that is not a std::exception");
    }
    st->running = false;
    if (st->orphaned) {
        delete st; /* ~Timer ran inside the callback and left the state to us */
        return;
    }
    if (!st->repeat) {
        /* Done: the callback goes now. Moved out first, since destroying it may end
         * the Timer that owns `st`; `st` is not touched after that. */
        st->id = 0;
        if (st->core) unlink(st->core->timers, st);
        std::unique_ptr<Callback> done = std::move(st->fn);
    }
}

inline void on_call(tern_mgr *, void *user) noexcept {
    std::unique_ptr<Callback> fn(static_cast<Callback *>(user));
    try {
        fn->call();
    } catch (const std::exception &e) {
        log_exception("a Remote::call function", e.what());
    } catch (...) {
        log_exception("a Remote::call function", "an exception that is not a std::exception");
    }
}

} // namespace detail

/* ------------------------------------------------------------------------------------ */
/* Timer: a timer and its callback (loop thread). Empty when default-constructed,        */
/* moved from, cancelled, or a one-shot that fired.                                       */

class Timer {
public:
    Timer() noexcept = default;
    Timer(Timer &&o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
    Timer &operator=(Timer &&o) noexcept {
        if (this != &o) {
            cancel();
            st_ = std::exchange(o.st_, nullptr);
        }
        return *this;
    }
    Timer(const Timer &) = delete;
    Timer &operator=(const Timer &) = delete;
    ~Timer() { cancel(); }

    /* Cancels the timer (if it has not fired, or repeats) and destroys its callback;
     * from inside its own callback too. */
    void cancel() noexcept {
        detail::TimerState *st = std::exchange(st_, nullptr);
        if (st == nullptr) return;
        if (st->core) {
            if (st->id != 0) tern_timer_cancel(st->core->m, st->id);
            detail::unlink(st->core->timers, st);
            st->core = nullptr;
        }
        st->id = 0;
        if (st->running) {
            st->orphaned = true; /* on_timer deletes it once the callback returns */
        } else {
            delete st;
        }
    }
    /* Whether it will still fire. */
    bool active() const noexcept { return st_ && st_->core && st_->id != 0; }
    uint64_t id() const noexcept { return st_ ? st_->id : 0; }

private:
    friend class Manager;
    explicit Timer(detail::TimerState *st) noexcept : st_(st) {}
    detail::TimerState *st_ = nullptr;
};

/* ------------------------------------------------------------------------------------ */
/* Remote: posts to a manager from any thread. Stays valid after the manager is gone     */
/* (calls then return TERN_ECLOSED).                                                      */

class Remote {
public:
    Remote() noexcept = default;
    explicit Remote(tern_remote *adopt) noexcept : r_(adopt) {}
    Remote(Remote &&o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    Remote &operator=(Remote &&o) noexcept {
        if (this != &o) {
            tern_remote_free(r_);
            r_ = std::exchange(o.r_, nullptr);
        }
        return *this;
    }
    Remote(const Remote &) = delete;
    Remote &operator=(const Remote &) = delete;
    ~Remote() { tern_remote_free(r_); }

    /* Another remote for the same manager. Throws. */
    Remote clone() const { return Remote(detail::check(tern_remote_clone(r_), "tern_remote_clone")); }
    tern_remote *get() const noexcept { return r_; }
    explicit operator bool() const noexcept { return r_ != nullptr; }

    Status send(ConnId id, Bytes take) noexcept { return Status(tern_remote_send(r_, id, take.release())); }
    Status ws_send(ConnId id, int op, Bytes take) noexcept {
        return Status(tern_remote_ws_send(r_, id, op, take.release()));
    }
    Status publish(CStr topic, int op, Bytes take) noexcept {
        return Status(tern_remote_ws_publish(r_, topic.get(), op, take.release()));
    }
    Status wakeup(ConnId id, Bytes take = Bytes()) noexcept { return Status(tern_remote_wakeup(r_, id, take.release())); }
    Status close(ConnId id) noexcept { return Status(tern_remote_close(r_, id)); }

    /* Deferred HTTP answers (Conn::defer gave the token). */
    Status respond(Token t, int status, CStr headers, Bytes take) noexcept {
        return Status(tern_http_respond(r_, t, status, headers.get(), take.release()));
    }
    Status respond(Token t, int status, CStr headers, std::string_view body) {
        return respond(t, status, headers, Bytes::copy(body));
    }
    Status respond_begin(Token t, int status, CStr headers = nullptr) noexcept {
        return Status(tern_http_respond_begin(r_, t, status, headers.get()));
    }
    Status respond_write(Token t, Bytes take) noexcept { return Status(tern_http_respond_write(r_, t, take.release())); }
    Status respond_end(Token t) noexcept { return Status(tern_http_respond_end(r_, t)); }

    /* Runs `fn()` once on the loop thread (inside poll, or inside ~Manager if the
     * manager goes first). One allocation per call. */
    template <class F> Status call(F &&fn) {
        using Fn = std::decay_t<F>;
        static_assert(std::is_invocable_v<Fn &>, "Remote::call takes a function of no arguments");
        auto *cb = new detail::CallbackOf<Fn>(std::forward<F>(fn));
        int rc = tern_remote_call(r_, &detail::on_call, cb);
        if (rc != TERN_OK) delete cb; /* not posted: it will never run */
        return Status(rc);
    }

private:
    tern_remote *r_ = nullptr;
};

/* ------------------------------------------------------------------------------------ */
/* Manager: an event loop and everything on it (loop thread).                              */

class Manager {
public:
    /* A new manager with default options. Throws. */
    Manager() : core_(new detail::Core) {
        core_->m = tern_mgr_new();
        if (core_->m == nullptr) {
            delete core_;
            detail::raise("tern_mgr_new");
        }
    }
    Manager(Manager &&o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
    Manager &operator=(Manager &&o) noexcept {
        if (this != &o) {
            destroy();
            core_ = std::exchange(o.core_, nullptr);
        }
        return *this;
    }
    Manager(const Manager &) = delete;
    Manager &operator=(const Manager &) = delete;
    /* tern_mgr_free (the final CLOSE events run, with every handler alive), then the
     * handlers and the callbacks of timers still pending are destroyed. */
    ~Manager() { destroy(); }

    tern_mgr *get() const noexcept { return core_ ? core_->m : nullptr; }

    Status set(int option, int64_t value) noexcept { return Status(tern_mgr_set(get(), option, value)); }
    /* One loop iteration: code() is the number of callbacks run; false with
     * TERN_ECLOSED once a shutdown is complete (so `while (mgr.poll(100)) {}`). */
    Status poll(int timeout_ms) noexcept { return Status(tern_mgr_poll(get(), timeout_ms)); }
    Status shutdown(int timeout_ms) noexcept { return Status(tern_mgr_shutdown(get(), timeout_ms)); }
    size_t conn_count() const noexcept { return tern_mgr_conn_count(get()); }
    Conn lookup(ConnId id) const noexcept { return Conn(tern_conn_lookup(get(), id)); }
    Status publish(CStr topic, int op, Bytes take) noexcept {
        return Status(tern_ws_publish(get(), topic.get(), op, take.release()));
    }
    /* A new remote, for another thread. Throws. */
    Remote remote() { return Remote(detail::check(tern_mgr_remote(get()), "tern_mgr_remote")); }

    /* Listeners (their handler also runs for every connection they accept) and
     * outgoing connections. `fn(tern::Conn, tern::Event)`. Throw tern::Error (e.g.
     * code() TERN_EADDRINUSE when the port is taken). */
    template <class F> Conn listen(CStr url, F &&fn) { return open(tern_listen, "tern_listen", url, std::forward<F>(fn), false); }
    template <class F> Conn http_listen(CStr url, F &&fn) {
        return open(tern_http_listen, "tern_http_listen", url, std::forward<F>(fn), false);
    }
    template <class F> Conn connect(CStr url, F &&fn) { return open(tern_connect, "tern_connect", url, std::forward<F>(fn), true); }
    template <class F> Conn http_connect(CStr url, F &&fn) {
        return open(tern_http_connect, "tern_http_connect", url, std::forward<F>(fn), true);
    }
    template <class F> Conn ws_connect(CStr url, F &&fn) {
        return open(tern_ws_connect, "tern_ws_connect", url, std::forward<F>(fn), true);
    }

    /* Timers: `fn()` after `ms` (flags TERN_TIMER_REPEAT, TERN_TIMER_RUN_NOW). The
     * Timer owns the timer: dropping it cancels it, hence [[nodiscard]]. Throws. */
    template <class F> [[nodiscard]] Timer timer(uint64_t ms, int flags, F &&fn) {
        using Fn = std::decay_t<F>;
        static_assert(std::is_invocable_v<Fn &>, "a timer callback takes no arguments");
        auto st = std::make_unique<detail::TimerState>();
        st->fn = std::make_unique<detail::CallbackOf<Fn>>(std::forward<F>(fn));
        st->repeat = (flags & TERN_TIMER_REPEAT) != 0;
        st->id = tern_timer_add(get(), ms, flags, &detail::on_timer, st.get());
        if (st->id == 0) detail::raise("tern_timer_add");
        st->core = core_;
        detail::link(core_->timers, st.get());
        return Timer(st.release());
    }
    template <class F> [[nodiscard]] Timer after(uint64_t ms, F &&fn) { return timer(ms, 0, std::forward<F>(fn)); }
    template <class F> [[nodiscard]] Timer every(uint64_t ms, F &&fn) {
        return timer(ms, TERN_TIMER_REPEAT, std::forward<F>(fn));
    }

private:
    using OpenFn = tern_conn *(*)(tern_mgr *, const char *, tern_handler, void *);

    template <class F> Conn open(OpenFn how, const char *call, CStr url, F &&fn, bool one_conn) {
        using Fn = std::decay_t<F>;
        static_assert(std::is_invocable_v<Fn &, Conn, Event>, "a handler is called as fn(tern::Conn, tern::Event)");
        auto h = std::make_unique<detail::HandlerOf<Fn>>(std::forward<F>(fn));
        h->core = core_;
        h->one_conn = one_conn;
        tern_conn *c = how(get(), url.get(), &detail::on_event, h.get());
        if (c == nullptr) detail::raise(call);
        detail::link(core_->handlers, static_cast<detail::Handler *>(h.release()));
        return Conn(c);
    }

    void destroy() noexcept {
        detail::Core *core = std::exchange(core_, nullptr);
        if (core == nullptr) return;
        tern_mgr_free(core->m); /* final CLOSE events: every handler still alive */
        /* Timers left: all detached first, since destroying a callback may destroy
         * Timers (theirs or others'), then the callbacks go. */
        detail::Callback *dead = nullptr;
        while (detail::TimerState *st = core->timers) {
            detail::unlink(core->timers, st);
            st->core = nullptr;
            st->id = 0;
            if (detail::Callback *cb = st->fn.release()) {
                cb->dead_next = dead;
                dead = cb;
            }
        }
        while (dead != nullptr) {
            std::unique_ptr<detail::Callback> cb(std::exchange(dead, dead->dead_next));
        }
        while (detail::Handler *h = core->handlers) {
            detail::unlink(core->handlers, h);
            delete h;
        }
        delete core;
    }

    detail::Core *core_ = nullptr;
};

} // namespace tern

#endif /* TERN_HPP */
