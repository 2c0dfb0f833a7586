# SPDX-License-Identifier: MIT
# Writes a C++ source defining `extern const char NAME[]` with the bytes of
# INPUT, as a raw string literal (run with cmake -P at build time, so editing
# INPUT rebuilds the target that includes OUTPUT).
# Usage: cmake -DINPUT=page.html -DOUTPUT=page.cpp -DNAME=symbol -P embed_text.cmake
file(READ "${INPUT}" text)
set(delim "percore_embed")
string(FIND "${text}" ")${delim}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delim}\"")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/embed_text.cmake; do not edit.\n"
  "namespace percore::detail {\nextern const char ${NAME}[];\n"
  "const char ${NAME}[] = R\"${delim}(${text})${delim}\";\n}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
