# Sanitizer and fuzzing builds (docs/SANITIZERS.md, docs/FUZZING.md): the
# compile and link flags of every target, so included before any. -g1: line
# tables, so that sanitizer reports name file:line.
if(DRUNC_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "DRUNC_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -g1)
  add_link_options(-fsanitize=address,undefined)
elseif(DRUNC_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -g1)
  add_link_options(-fsanitize=thread)
  # Debian's libzmq is not instrumented: every program wraps the ZeroMQ
  # send and receive calls of our objects (cppzmq is header-only) with
  # functions that tell TSan a message hand-off is a synchronisation
  # (tests/tsan/zmq_tsan_annotations.cpp says why and what).
  add_link_options(LINKER:--wrap=zmq_send,--wrap=zmq_recv,--wrap=zmq_msg_send,--wrap=zmq_msg_recv)
  add_library(drunc_tsan_zmq STATIC ${PROJECT_SOURCE_DIR}/tests/tsan/zmq_tsan_annotations.cpp)
  # Every target created from here on links it (static libraries pass it on
  # to the programs that link them, after themselves).
  link_libraries($<BUILD_INTERFACE:drunc_tsan_zmq>)
elseif(DRUNC_SANITIZE)  # ON, address
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -g1)
  add_link_options(-fsanitize=address,undefined)
endif()
