# SPDX-License-Identifier: MIT
# Dependencies of percore::export for consumers of the installed package.
find_dependency(PkgConfig)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
