// demo_cpp: c-examples/demo.c again, in C++17 with include/tern.hpp; the same page
// (c-examples/demo_root) and the same routes, so the browser test runs it too.
//
//   usage: demo_cpp [--port PORT] [--uploads DIR] [--root DIR]   (make demo-cpp)
//
// What tern.hpp changes against the C version: the handler is a lambda capturing the
// server's state (no user pointers, no casts), per-connection state lives in a map by
// ConnId, the worker is a std::thread holding its own tern::Remote, buffers are
// tern::Bytes moved into the calls that take them, the status line is a tern::Timer
// that stops when it goes out of scope, and errors that C reports through
// tern_last_error() arrive as tern::Error (the taken port, below).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <dirent.h>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "tern.hpp"

namespace {

constexpr long long kUploadMax = 64LL << 20; // one file; larger ones get tern's 413
constexpr long long kUploadBudget = 1LL << 30; // all files of one run; past it: 507
constexpr size_t kChatMax = 500;
constexpr size_t kStatsQueue = 64;
using Clock = std::chrono::steady_clock;

volatile sig_atomic_t stop_requested = 0;

// Written on the loop thread, read by the worker: atomics, relaxed (independent counts).
struct Stats {
    std::atomic<int> conns{0}, websockets{0};
    std::atomic<unsigned long long> requests{0}, bytes_sent{0}, pushed{0}, uploads{0}, upload_bytes{0};
    Clock::time_point start = Clock::now();

    double uptime() const { return std::chrono::duration<double>(Clock::now() - start).count(); }
    std::string json(const char *type, double rps = -1) const {
        char out[512];
        int n = std::snprintf(out, sizeof out,
                              "{\"type\":\"%s\",\"connections\":%d,\"websockets\":%d,\"requests\":%llu,"
                              "\"bytes_sent\":%llu,\"pushed\":%llu,\"uploads\":%llu,\"uptime_s\":%.1f",
                              type, conns.load(), websockets.load(), requests.load(), bytes_sent.load(), pushed.load(),
                              uploads.load(), uptime());
        std::string s(out, static_cast<size_t>(n));
        if (rps >= 0) s += ",\"rps\":" + std::to_string(rps);
        return s + "}";
    }
};

std::string json_escape(std::string_view in) {
    std::string out;
    for (unsigned char ch : in) {
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += static_cast<char>(ch);
        } else if (ch < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", ch);
            out += esc;
        } else {
            out += static_cast<char>(ch);
        }
    }
    return out;
}

// Letters, digits, '.', '-', '_'; others become '_'; no leading dot.
std::string clean_name(std::string_view in) {
    std::string out;
    for (char ch : in) {
        if (out.size() == 96) break;
        if (out.empty() && ch == '.') continue;
        bool ok = std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == '_';
        out += ok ? ch : '_';
    }
    return out;
}

// The worker: a stats tick every second (Remote::publish), /api/stats tokens in between
// (Remote::respond).
class Worker {
public:
    Worker(tern::Remote r, Stats &s) : remote_(std::move(r)), stats_(s), thread_([this] { run(); }) {}
    ~Worker() {
        {
            std::lock_guard<std::mutex> g(mu_);
            stop_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    // False when the queue is full (the caller answers 503 itself).
    bool has_room() {
        std::lock_guard<std::mutex> g(mu_);
        return tokens_.size() < kStatsQueue;
    }
    void push(tern::Token t) {
        std::lock_guard<std::mutex> g(mu_);
        tokens_.push_back(t);
        cv_.notify_one();
    }

private:
    void run() {
        unsigned long long last = 0;
        auto tick = Clock::now();
        std::unique_lock<std::mutex> g(mu_);
        while (!stop_) {
            tick += std::chrono::seconds(1);
            while (!stop_ && cv_.wait_until(g, tick, [&] { return stop_ || !tokens_.empty(); })) {
                if (stop_) break;
                tern::Token t = tokens_.front();
                tokens_.pop_front();
                g.unlock();
                remote_.respond(t, 200, "Content-Type: application/json\r\nCache-Control: no-store\r\n",
                                tern::Bytes::from(stats_.json("stats")));
                g.lock();
            }
            if (stop_) break;
            g.unlock();
            publish_tick(last);
            g.lock();
        }
    }
    void publish_tick(unsigned long long &last) {
        unsigned long long now = stats_.requests.load();
        std::string json = stats_.json("tick", static_cast<double>(now - last));
        last = now;
        // One frame per subscriber; the count is the one seen now (fan-out is on the loop).
        if (remote_.publish("stats", TERN_WS_TEXT, tern::Bytes::from(std::move(json))))
            stats_.pushed += static_cast<unsigned long long>(stats_.websockets.load());
    }

    tern::Remote remote_;
    Stats &stats_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<tern::Token> tokens_;
    bool stop_ = false;
    std::thread thread_;
};

// One upload in progress: its partial file, or why it was refused.
struct Upload {
    int fd = -1;
    std::string partial, name, error;
    long long bytes = 0;
    int status = 0;

    Upload() = default;
    Upload(Upload &&o) noexcept
        : fd(std::exchange(o.fd, -1)), partial(std::move(o.partial)), name(std::move(o.name)),
          error(std::move(o.error)), bytes(o.bytes), status(o.status) {}
    Upload(const Upload &) = delete;
    ~Upload() { // the client left before the end: keep nothing
        if (fd >= 0) {
            ::close(fd);
            ::unlink(partial.c_str());
        }
    }
    void refuse(int st, std::string why) {
        status = st;
        error = std::move(why);
        if (fd >= 0) {
            ::close(fd);
            ::unlink(partial.c_str());
            fd = -1;
        }
    }
    void write(std::string_view piece) {
        for (size_t done = 0; fd >= 0 && done < piece.size();) {
            ssize_t n = ::write(fd, piece.data() + done, piece.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) refuse(500, std::strerror(errno));
            else done += static_cast<size_t>(n);
        }
        bytes += static_cast<long long>(piece.size());
    }
};

class Demo {
public:
    Demo(std::string root, std::string uploads) : root_(std::move(root)), dir_(std::move(uploads)) {}

    // Throws tern::Error (TERN_EADDRINUSE when the port is taken).
    int listen(tern::Manager &m, int port) {
        m.set(TERN_OPT_HTTP_HEAD_EVENTS, 1);
        m.set(TERN_OPT_MAX_STREAM_BODY_BYTES, kUploadMax);
        m.set(TERN_OPT_MAX_BODY_BYTES, 64 << 10);
        m.set(TERN_OPT_MAX_WS_MESSAGE, 4096);
        m.set(TERN_OPT_DEFER_TIMEOUT_MS, 5000);
        tern::Conn l = m.http_listen("http://127.0.0.1:" + std::to_string(port),
                                     [this](tern::Conn c, tern::Event ev) { on_event(c, ev); });
        listener_ = l.id();
        return l.local_port();
    }
    void set_worker(Worker *w) { worker_ = w; }
    Stats &stats() { return stats_; }

private:
    void on_event(tern::Conn c, tern::Event ev) {
        switch (ev.type) {
        case tern::EventType::accept: ++stats_.conns; break;
        case tern::EventType::http_head: head(c, ev.http()); break;
        case tern::EventType::http_body: uploads_[c.id()].write(ev.bytes()); break;
        case tern::EventType::http_msg:
            ++stats_.requests;
            route(c, ev.http());
            break;
        case tern::EventType::ws_open: ws_open(c); break;
        case tern::EventType::ws_msg: chat(c, ev.ws()); break;
        case tern::EventType::write: stats_.bytes_sent += ev.written(); break;
        case tern::EventType::close: closed(c); break;
        default: break;
        }
    }

    void closed(tern::Conn c) {
        if (c.id() == listener_) return;
        --stats_.conns;
        if (websockets_.erase(c.id())) --stats_.websockets;
        uploads_.erase(c.id());
    }

    void head(tern::Conn c, tern::HttpMsg h) {
        if (h.uri() != "/api/upload" || h.method() != "POST") return;
        uploads_.emplace(c.id(), prepare(c, h));
        c.stream_body(); // refused ones too: the browser then reads our answer
    }

    Upload prepare(tern::Conn c, tern::HttpMsg h) {
        Upload u;
        u.name = clean_name(h.query_var("name").value_or(""));
        long long announced = std::atoll(std::string(h.header("Content-Length")).c_str());
        if (u.name.empty()) {
            u.refuse(400, "need ?name=FILE");
        } else if (static_cast<long long>(stats_.upload_bytes) + announced > kUploadBudget) {
            u.refuse(507, "the demo's upload budget for this run is used up");
        } else {
            u.partial = dir_ + "/.partial-" + std::to_string(c.id());
            u.fd = ::open(u.partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (u.fd < 0) u.refuse(500, std::strerror(errno));
        }
        return u;
    }

    void route(tern::Conn c, tern::HttpMsg h) {
        std::string_view uri = h.uri();
        bool get = h.method() == "GET" || h.method() == "HEAD";
        if (auto it = uploads_.find(c.id()); it != uploads_.end()) {
            finish(c, std::move(it->second));
            uploads_.erase(it);
        } else if (uri == "/ws") {
            c.ws_upgrade(h);
        } else if (uri == "/api/stats" && get) {
            if (!worker_->has_room()) json(c, 503, "{\"error\":\"busy\"}");
            else worker_->push(c.defer(h)); // the worker answers through its Remote
        } else if (uri == "/api/uploads" && get) {
            json(c, 200, list());
        } else if (uri == "/api/upload" && h.method() == "POST") {
            finish(c, prepare(c, h)); // an empty file: no body, so no HTTP_HEAD
        } else if (uri == "/api/upload") {
            json(c, 405, "{\"error\":\"POST the file as the body, with ?name=FILE\"}");
        } else if (tern::match(uri, "/api/**")) {
            json(c, 404, "{\"error\":\"no such API\"}");
        } else {
            c.serve_dir(h, root_);
        }
    }

    static void json(tern::Conn c, int status, std::string_view body) {
        c.reply(status, "Content-Type: application/json\r\nCache-Control: no-store\r\n", body);
    }

    // Links the partial file under its name ("-2", "-3"... before the extension if taken).
    void finish(tern::Conn c, Upload u) {
        std::string final_name;
        if (u.fd >= 0) {
            ::close(std::exchange(u.fd, -1));
            size_t dot = u.name.rfind('.');
            if (dot == 0 || dot == std::string::npos) dot = u.name.size();
            for (int i = 1; i < 1000 && final_name.empty(); i++) {
                std::string n = i == 1 ? u.name : u.name.substr(0, dot) + "-" + std::to_string(i) + u.name.substr(dot);
                if (::link(u.partial.c_str(), (dir_ + "/" + n).c_str()) == 0) final_name = n;
                else if (errno != EEXIST) break;
            }
            ::unlink(u.partial.c_str());
            if (final_name.empty()) u.refuse(500, "cannot name the file");
        }
        if (u.status != 0) return json(c, u.status, "{\"error\":\"" + json_escape(u.error) + "\"}");
        ++stats_.uploads;
        stats_.upload_bytes += static_cast<unsigned long long>(u.bytes);
        json(c, 201, "{\"name\":\"" + json_escape(final_name) + "\",\"size\":" + std::to_string(u.bytes) + "}");
    }

    std::string list() const {
        std::string out = "[";
        DIR *d = opendir(dir_.c_str());
        for (dirent *e; d && (e = readdir(d)) != nullptr;) {
            struct stat st;
            if (e->d_name[0] == '.' || ::stat((dir_ + "/" + e->d_name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
            if (out.size() > 1) out += ",";
            out += "{\"name\":\"" + json_escape(e->d_name) + "\",\"size\":" + std::to_string(st.st_size) +
                   ",\"mtime\":" + std::to_string(st.st_mtime) + "}";
        }
        if (d) closedir(d);
        return out + "]";
    }

    void ws_open(tern::Conn c) {
        websockets_.insert(c.id());
        ++stats_.websockets;
        c.subscribe("stats");
        c.subscribe("chat");
        c.ws_send(TERN_WS_TEXT, "{\"type\":\"hello\",\"id\":" + std::to_string(c.id()) + "}");
        ++stats_.pushed;
    }

    // To every browser, the sender too, as one buffer queued by reference on each.
    void chat(tern::Conn c, tern::WsMsg m) {
        if (m.op != TERN_WS_TEXT || m.data.empty()) return;
        if (m.data.size() > kChatMax) {
            c.ws_close(1009, "chat messages are at most 500 bytes");
            return;
        }
        std::string line = "{\"type\":\"chat\",\"from\":" + std::to_string(c.id()) + ",\"text\":\"" +
                           json_escape(m.data) + "\"}";
        tern::Status sent = c.publish("chat", TERN_WS_TEXT, tern::Bytes::from(std::move(line)));
        if (sent) stats_.pushed += static_cast<unsigned long long>(sent.code());
    }

    std::string root_, dir_;
    Stats stats_;
    Worker *worker_ = nullptr;
    tern::ConnId listener_ = 0;
    std::unordered_map<tern::ConnId, Upload> uploads_;
    std::unordered_set<tern::ConnId> websockets_;
};

std::string find_root(const char *given) {
    if (given) return given;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        std::string dir(exe, static_cast<size_t>(n));
        std::string installed = dir.substr(0, dir.rfind('/')) + "/../share/tern/demo_root";
        if (access((installed + "/index.html").c_str(), R_OK) == 0) return installed;
    }
#ifdef TERN_DEMO_ROOT
    return TERN_DEMO_ROOT;
#else
    return "demo_root";
#endif
}

std::string make_upload_dir(const char *given) {
    if (given) {
        if (mkdir(given, 0755) != 0 && errno != EEXIST) throw std::runtime_error(std::string("mkdir ") + given);
        return given;
    }
    const char *base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/tern-demo-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
    return tmpl;
}

void status_line(const Stats &s) {
    int up = static_cast<int>(s.uptime());
    std::printf("demo: %d connections (%d WebSocket), %llu requests, %.1f MB sent, %llu messages pushed, "
                "%llu uploads, up %dm%02ds\n",
                s.conns.load(), s.websockets.load(), s.requests.load(), static_cast<double>(s.bytes_sent.load()) / 1e6,
                s.pushed.load(), s.uploads.load(), up / 60, up % 60);
    std::fflush(stdout);
}

int run(int port, const char *uploads_arg, const char *root_arg) {
    Demo demo(find_root(root_arg), make_upload_dir(uploads_arg));
    tern::Manager m; // declared after `demo`: its final CLOSE events still find `demo`
    try {
        port = demo.listen(m, port);
    } catch (const tern::Error &e) {
        if (e.code() != TERN_EADDRINUSE) throw;
        std::fprintf(stderr,
                     "demo: port %d is taken: another program listens on 127.0.0.1:%d.\n"
                     "demo: pick another port: make demo-cpp PORT=%d, or demo_cpp --port %d (0 picks a free one)\n",
                     port, port, port + 1, port + 1);
        return 1;
    }
    Worker worker(m.remote(), demo.stats());
    demo.set_worker(&worker);
    tern::Timer status = m.every(5000, [&] { status_line(demo.stats()); });

    std::printf("tern %s demo (C++): http://127.0.0.1:%d/  (open it in a browser; Ctrl-C stops it)\n",
                tern_version(), port);
    std::fflush(stdout);
    while (!stop_requested && m.poll(200)) {
    }
    std::printf("demo: stopping (requests in flight are answered; Ctrl-C again stops at once)\n");
    std::fflush(stdout);
    m.shutdown(3000);
    while (stop_requested < 2 && m.poll(100)) {
    }
    return 0; // ~Worker joins the thread, ~Timer cancels, ~Manager frees
}

} // namespace

int main(int argc, char **argv) {
    int port = 8000;
    const char *uploads = nullptr, *root = nullptr;
    for (int i = 1; i < argc; i++) {
        std::string_view a = argv[i];
        if (a == "--port" && i + 1 < argc) port = std::atoi(argv[++i]);
        else if (a == "--uploads" && i + 1 < argc) uploads = argv[++i];
        else if (a == "--root" && i + 1 < argc) root = argv[++i];
        else if (!a.empty() && std::isdigit(static_cast<unsigned char>(a[0]))) port = std::atoi(argv[i]);
        else {
            std::fprintf(stderr, "usage: %s [--port PORT] [--uploads DIR] [--root DIR]\n", argv[0]);
            return 2;
        }
    }
    struct sigaction sa {};
    sa.sa_handler = [](int) { stop_requested = stop_requested + 1; };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    try {
        int rc = run(port, uploads, root);
        if (rc == 0) std::printf("demo: stopped\n");
        return rc;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "demo: %s\n", e.what());
        return 1;
    }
}
