# Dependencies of percore::export for consumers of the installed package.
find_dependency(PkgConfig)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
