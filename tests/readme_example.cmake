# Extracts the first ```cpp block of README.md, compiles it against the
# source tree's headers and runs it; fails if the block is missing, does not
# compile, or exits non-zero.
file(READ ${README} text)
string(REGEX MATCH "```cpp\n(.*)" rest "${text}")
if(NOT rest)
  message(FATAL_ERROR "README.md has no ```cpp block")
endif()
string(FIND "${CMAKE_MATCH_1}" "```" end)
string(SUBSTRING "${CMAKE_MATCH_1}" 0 ${end} code)
file(MAKE_DIRECTORY ${OUT})
file(WRITE ${OUT}/readme_example.cpp "${code}")
execute_process(COMMAND ${CXX} -std=c++20 -O2 -Wall -Werror -I${INCLUDE} ${OUT}/readme_example.cpp
                        -o ${OUT}/readme_example -pthread
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "README example does not compile")
endif()
execute_process(COMMAND ${OUT}/readme_example RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "README example exited with ${rc}")
endif()
