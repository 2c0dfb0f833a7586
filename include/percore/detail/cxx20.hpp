// SPDX-License-Identifier: MIT
// percore/detail/cxx20.hpp - stops a pre-C++20 build with one clear message
// (internal). Every public header includes it first, so a consumer built
// with an older -std sees this instead of pages of errors about concepts.
#pragma once

#if !defined(__cplusplus) || __cplusplus < 202002L
#error "percore needs C++20: compile with -std=c++20 (or -std=gnu++20) or later"
// A missing include is fatal in GCC and Clang: compilation stops here.
#include <percore_requires_cxx20>
#endif
