// The shim's one error convention, shared by its files: a C ABI function runs its body in
// `guarded`, returns 0 on success and 1 on a C++ exception, whose message waits in
// `bf::last_error` (read through `bf_last_error`) until the next call on this thread.
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace bf {

extern thread_local std::string last_error;

template <typename F>
int guarded(F&& body) {
  try {
    body();
    return 0;
  } catch (const c10::Error& e) {
    // libtorch's message without the C++ frames it appends.
    last_error = e.what_without_backtrace();
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return 1;
}

}  // namespace bf
