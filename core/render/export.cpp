// Atomic, no-replace file writes and the export of a comparison (PNGs, report.json, CSV).
#include "core/render/export.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#include "core/common.h"

namespace fs = std::filesystem;

namespace dl {

static bool path_exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;  // a dangling symlink counts as existing
}

static void write_all(int fd, const std::string& bytes, const std::string& what) {
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error(str_cat(what, ": write failed (", std::strerror(errno), ")"));
        }
        done += size_t(n);
    }
}

// Moves tmp to path without replacing: 0 on success, else errno (EEXIST when path exists).
static int move_noreplace(const std::string& tmp, const std::string& path) {
    if (::link(tmp.c_str(), path.c_str()) == 0) {
        ::unlink(tmp.c_str());
        return 0;
    }
    const int link_err = errno;
    if (link_err == EEXIST) return EEXIST;
#ifdef SYS_renameat2
    // Filesystems without hard links (FAT, some FUSE): renameat2(RENAME_NOREPLACE = 1).
    if (::syscall(SYS_renameat2, AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), 1u) == 0) return 0;
    if (errno == EEXIST) return EEXIST;
    if (errno != EINVAL && errno != ENOSYS) return errno;
#endif
    // Last resort: check, then rename (a writer racing us inside this window could be replaced).
    if (path_exists(path)) return EEXIST;
    if (::rename(tmp.c_str(), path.c_str()) == 0) return 0;
    return errno;
}

void write_file_atomic(const std::string& path, const std::string& bytes, bool overwrite) {
    const fs::path target(path);
    if (target.filename().empty()) throw Error(str_cat(path, ": not a file name"));
    if (!overwrite && path_exists(path))
        throw Error(str_cat(path, ": already exists (not replaced; allow overwrite to replace it)"));
    const std::string dir = target.has_parent_path() ? target.parent_path().string() : std::string(".");
    std::string tmp = dir + "/." + target.filename().string() + ".tmp-XXXXXX";
    std::vector<char> name(tmp.begin(), tmp.end());
    name.push_back('\0');
    const int fd = ::mkstemp(name.data());
    if (fd < 0) throw Error(str_cat(path, ": cannot create a temporary file in ", dir, " (", std::strerror(errno), ")"));
    tmp = name.data();
    try {
        ::fchmod(fd, 0644);
        write_all(fd, bytes, path);
        if (::fsync(fd) != 0) throw Error(str_cat(path, ": fsync failed (", std::strerror(errno), ")"));
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    if (::close(fd) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        throw Error(str_cat(path, ": close failed (", std::strerror(e), ")"));
    }
    if (overwrite) {
        if (::rename(tmp.c_str(), path.c_str()) != 0) {
            const int e = errno;
            ::unlink(tmp.c_str());
            throw Error(str_cat(path, ": cannot move into place (", std::strerror(e), ")"));
        }
    } else {
        const int e = move_noreplace(tmp, path);
        if (e != 0) {
            ::unlink(tmp.c_str());
            if (e == EEXIST) throw Error(str_cat(path, ": already exists (not replaced; allow overwrite to replace it)"));
            throw Error(str_cat(path, ": cannot move into place (", std::strerror(e), ")"));
        }
    }
    // Make the new directory entry durable too.
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

// --- export -----------------------------------------------------------------------------------

static std::string sanitise(const std::string& s) {
    std::string out;
    for (char c : s) out += (std::isalnum((unsigned char)c) || c == '-' || c == '_') ? c : '_';
    return out.empty() ? "run" : out;
}

// LLaVA-NeXT (anyres): every overlay in both views, tiles then base.
static std::vector<std::string> export_views(const ExportRequest& request) {
    if (request.geometry.mode == "anyres") return {"tiles", "base"};
    return {""};
}

std::vector<std::string> export_file_names(const ExportRequest& request) {
    std::vector<std::string> names;
    const std::vector<std::string> views = export_views(request);
    for (size_t i = 0; i < request.runs.size(); i++)
        for (const std::string& v : views)
            names.push_back(str_cat("overlay_", i, "_", sanitise(request.runs[i].config.method), v.empty() ? "" : "_", v,
                                    ".png"));
    names.push_back("composite.png");
    names.push_back("report.json");
    names.push_back("figures.csv");
    return names;
}

static std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

static std::string csv_quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

static std::string fixed3(double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.3f", v);
    return buf;
}

std::string figures_csv(const std::vector<MethodRun>& runs) {
    double none_prefill = -1;
    for (const MethodRun& r : runs)
        if (r.config.method == "none") {
            none_prefill = r.timing_ms.prefill;
            break;
        }
    std::string csv =
        "method,layer,budget,kept_count,vision_ms,prefill_ms,selection_ms,decode_ms,ttft_ms,total_ms,"
        "speedup_vs_none,kv_cache_bytes,output_tokens,text\n";
    for (const MethodRun& r : runs) {
        const std::string speedup =
            none_prefill >= 0 && r.timing_ms.prefill > 0 ? fixed3(none_prefill / r.timing_ms.prefill) : "";
        csv += str_cat(csv_field(r.config.method), ",", r.config.layer, ",", r.pruning.budget, ",",
                       r.pruning.kept_count, ",", fixed3(r.timing_ms.vision), ",", fixed3(r.timing_ms.prefill), ",",
                       fixed3(r.timing_ms.selection), ",", fixed3(r.timing_ms.decode), ",",
                       fixed3(r.timing_ms.ttft), ",", fixed3(r.timing_ms.total), ",", speedup, ",",
                       r.kv_cache_bytes, ",", r.output_ids.size(), ",", csv_quoted(r.text), "\n");
    }
    return csv;
}

std::vector<std::string> export_all(const ExportRequest& request) {
    if (request.dir.empty()) throw Error("export: no output directory given");
    if (request.runs.empty()) throw Error(str_cat(request.dir, ": nothing to export (no runs)"));
    const std::vector<std::string> names = export_file_names(request);
    std::vector<std::string> paths;
    for (const std::string& n : names) paths.push_back((fs::path(request.dir) / n).string());
    if (!request.overwrite)
        for (const std::string& p : paths)
            if (path_exists(p))
                throw Error(str_cat(p, ": already exists (nothing exported; allow overwrite to replace)"));

    // Render everything before touching the disk, so a rendering error leaves no partial export.
    std::vector<std::string> contents;
    for (const MethodRun& run : request.runs)
        for (const std::string& v : export_views(request)) {
            OverlayOptions o = request.overlay;
            if (!v.empty()) o.view = v;
            contents.push_back(encode_png(render_overlay(request.original, request.geometry, run.pruning, o)));
        }
    contents.push_back(encode_png(render_composite(request.original, request.geometry, request.runs,
                                                   request.question, request.overlay)));
    contents.push_back(request.report_json);
    contents.push_back(figures_csv(request.runs));

    std::error_code ec;
    fs::create_directories(request.dir, ec);
    if (ec) throw Error(str_cat(request.dir, ": cannot create directory (", ec.message(), ")"));
    for (size_t i = 0; i < paths.size(); i++) write_file_atomic(paths[i], contents[i], request.overwrite);
    return paths;
}

}  // namespace dl
