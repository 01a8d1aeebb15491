// fusegrad/io/file.hpp — what the file formats share: durable atomic writes, raw element bytes,
// reading and mapping files
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"
#include "fusegrad/io/format_error.hpp"

#if !__has_include(<unistd.h>)
#error "fusegrad/io: saving and loading files needs POSIX (open, fsync, rename, fstat)"
#endif

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

FG_DIAGNOSTICS_BEGIN

namespace fg::io::detail {

inline std::runtime_error os_error(const char* who, const std::string& what, int err) {
  return std::runtime_error(dynamic::text(who, ": ", what, ": ", std::strerror(err)));
}

// A file descriptor, closed when it goes out of scope; close() closes it sooner, checked.
class unique_fd {
 public:
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  int get() const { return fd_; }
  int close() {
    const int r = ::close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  int fd_;
};

// An output stream buffer over a file descriptor. The first failed write(2) (ENOSPC, EFBIG,
// EIO) is kept in `error` and fails the stream; large writes skip the buffer.
class fd_streambuf : public std::streambuf {
 public:
  explicit fd_streambuf(int fd) : fd_(fd), buf_(std::size_t(1) << 16) {
    setp(buf_.data(), buf_.data() + buf_.size());
  }
  int error = 0;

 protected:
  int_type overflow(int_type c) override {
    if (!drain())
      return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n < std::streamsize(buf_.size()))
      return std::streambuf::xsputn(s, n);
    return drain() && write_all(s, std::size_t(n)) ? n : 0;
  }
  int sync() override { return drain() ? 0 : -1; }

 private:
  bool write_all(const char* p, std::size_t n) {
    while (n > 0 && error == 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno != EINTR)
        error = errno;
      else if (w > 0) {
        p += w;
        n -= std::size_t(w);
      }
    }
    return error == 0;
  }
  bool drain() {
    const bool ok = write_all(pbase(), std::size_t(pptr() - pbase()));
    setp(buf_.data(), buf_.data() + buf_.size());
    return ok;
  }
  int fd_;
  std::vector<char> buf_;
};

// Temporaries are named ".<target>.<pid>.<unique>.tmp" beside the target: the pid tells a live
// writer's from one a killed process left behind.
inline std::string temporary_prefix(const std::string& target_name) {
  return "." + target_name + ".";
}

// Removes the temporaries that writers to `target` killed before they renamed left in `dir`
// (a process that no longer exists); a live writer's, this process's included, stay.
inline void remove_abandoned_temporaries(const std::filesystem::path& dir,
                                         const std::string& target_name) {
  const std::string prefix = temporary_prefix(target_name), suffix = ".tmp";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix))
      continue;
    char* end = nullptr;
    const long pid = std::strtol(name.c_str() + prefix.size(), &end, 10);
    if (pid > 0 && *end == '.' && pid != long(::getpid()) && ::kill(pid_t(pid), 0) != 0 &&
        errno == ESRCH)
      ::unlink(entry.path().c_str());
  }
}

// `write(out)` fills a new temporary file beside `path` (created exclusively, never through a
// link, with the mode of a new file under the umask), which is then flushed to the disk
// (fsync), renamed over `path`, and the directory flushed: after a crash or a power loss `path`
// names the old file or the whole new one. Any failure removes the temporary and leaves `path`
// as it was; of concurrent writers to one path the last rename wins, and readers see one whole
// file. `who` names the caller in errors.
template <class Write>
void write_atomically(const std::string& path, const char* who, Write write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string name = target.filename().string();
  remove_abandoned_temporaries(dir, name);
  // Unique among live writers: this process's pid and a serial (a name that a dead process with
  // this pid left behind is passed over by O_EXCL and the next serial).
  static std::atomic<unsigned long> serial{0};
  std::string tmp;
  int raw = -1;
  for (int attempt = 0; raw < 0; ++attempt) {
    tmp = (dir / (temporary_prefix(name) + std::to_string(::getpid()) + "." +
                  std::to_string(++serial) + ".tmp"))
              .string();
    raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (raw < 0 && (errno != EEXIST || attempt == 100))
      throw os_error(who, dynamic::text("cannot create a temporary file in '", dir.string(), "'"),
                     errno);
  }
  struct remove_unless_renamed {  // the temporary, however we leave before the rename
    const std::string& tmp;
    bool renamed = false;
    ~remove_unless_renamed() {
      if (!renamed)
        ::unlink(tmp.c_str());
    }
  } guard{tmp};
  unique_fd file(raw);
  fd_streambuf buf(file.get());
  std::ostream out(&buf);
  write(out);
  out.flush();
  if (buf.error || !out)
    throw os_error(who, dynamic::text("writing '", path, "' failed"), buf.error ? buf.error : EIO);
  if (::fsync(file.get()) != 0)
    throw os_error(who, dynamic::text("flushing '", path, "' to the disk failed"), errno);
  if (file.close() != 0)
    throw os_error(who, dynamic::text("writing '", path, "' failed"), errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw os_error(who, dynamic::text("cannot rename '", tmp, "' to '", path, "'"), errno);
  guard.renamed = true;
  // The rename itself reaches the disk with the directory. (Some file systems cannot fsync a
  // directory, EINVAL: nothing more can be done there.)
  const unique_fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.get() >= 0) {
    const int synced = ::fsync(d.get()), err = errno;
    if (synced != 0 && err != EINVAL)
      throw os_error(
          who, dynamic::text("'", path, "' was written, but flushing its directory failed"), err);
  }
}

// v's elements as they lie in memory (little-endian here).
inline void write_elements(std::ostream& out, const var& v) {
  const dynamic::impl& p = v.ready();
  const std::size_t es = dynamic::element_size(v.dtype());
  out.write(static_cast<const char*>(p.data->bytes) + p.offset * es,
            std::streamsize(std::size_t(v.size()) * es));
}

// A bool tensor read from a file holds its bytes as 0 or 1: any other byte, read as a C++ bool,
// would be undefined behaviour.
inline void normalise_bools(var& v) {
  if (v.dtype() != dtype::bool_)
    return;
  auto* b = static_cast<unsigned char*>(v.get().data->bytes) + v.get().offset;
  for (index_t i = 0, n = v.size(); i < n; ++i)
    b[i] = b[i] != 0;
}

// A regular file opened for reading, with its size from fstat.
struct input_file {
  unique_fd fd;
  std::uint64_t size = 0;
  input_file(const std::string& path, const char* who)
      : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd.get() < 0)
      throw os_error(who, dynamic::text("cannot open '", path, "'"), errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
      throw os_error(who, dynamic::text("cannot read '", path, "'"), errno);
    if (!S_ISREG(st.st_mode))
      throw std::runtime_error(dynamic::text(who, ": '", path, "' is not a regular file"));
    size = std::uint64_t(st.st_size);
  }
  // `n` bytes from `offset`, with pread(2) straight into `out`.
  void read(void* out, std::size_t n, std::uint64_t offset, const std::string& path,
            const char* who) const {
    auto* to = static_cast<char*>(out);
    while (n) {
      const ssize_t r = ::pread(fd.get(), to, n, off_t(offset));
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        throw os_error(who, dynamic::text("cannot read '", path, "'"), errno);
      if (r == 0)  // shorter than fstat said: changed while we read
        throw std::runtime_error(dynamic::text(who, ": '", path, "' shrank while it was read"));
      to += r, n -= std::size_t(r), offset += std::uint64_t(r);
    }
  }
};

// A tensor over host bytes that `keeper` owns (a file's mapping), not a copy of them. The bytes
// must be aligned to the element size.
inline var over_bytes(void* bytes, const extents& e, dtype t, std::shared_ptr<const void> keeper) {
  auto p = dynamic::make_pooled<dynamic::impl>();
  p->type = t;
  p->shape = e;
  p->data = dynamic::make_pooled<dynamic::storage>(bytes, e.size() * dynamic::element_size(t),
                                                   std::move(keeper));
  return var(std::move(p));
}

// The whole file, sized once from fstat and read with read(2) straight into the buffer.
inline std::vector<char> read_file(const std::string& path, const char* who) {
  const input_file file(path, who);
  std::vector<char> bytes(std::size_t(file.size));
  file.read(bytes.data(), bytes.size(), 0, path, who);
  return bytes;
}

// A whole file mapped copy-on-write: its pages are read when first touched, and a write to them
// changes this process's copy only, never the file. Tensors that share these bytes hold the
// mapping alive (dynamic::storage's keeper).
class mapped_file {
 public:
  mapped_file(const input_file& file, const std::string& path, const char* who) : size_(file.size) {
    if (!size_)
      return;
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.fd.get(), 0);
    if (p == MAP_FAILED)
      throw os_error(who, dynamic::text("cannot map '", path, "'"), errno);
    bytes_ = static_cast<char*>(p);
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() {
    if (bytes_)
      ::munmap(bytes_, size_);
  }
  char* data() const { return bytes_; }
  std::size_t size() const { return size_; }

 private:
  char* bytes_ = nullptr;
  std::size_t size_;
};

}  // namespace fg::io::detail

FG_DIAGNOSTICS_END
