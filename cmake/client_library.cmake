# The installable client library, libdrunc_zmq_client.so: the objects of
# drunc_client, the wire codec and the generated classes (client/, proto/) in
# one shared library, drunc_zmq::client to CMake and drunc-zmq to pkg-config.
# drunc-pm and the tests keep the static libraries: a program that linked both
# this and drunc_broker would register the same protobuf descriptors twice.
include(GNUInstallDirs)
set_target_properties(drunc_client drunc_wire drunc_proto PROPERTIES POSITION_INDEPENDENT_CODE ON)
add_library(drunc_zmq_client SHARED
  $<TARGET_OBJECTS:drunc_client> $<TARGET_OBJECTS:drunc_wire> $<TARGET_OBJECTS:drunc_proto>)
add_library(drunc_zmq::client ALIAS drunc_zmq_client)
# ABI: while the version is 0.x each minor release may break it, so the SONAME
# carries major.minor (libdrunc_zmq_client.so.0.1); from 1.0 on, the major only.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(DRUNC_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
else()
  set(DRUNC_SOVERSION ${PROJECT_VERSION_MAJOR})
endif()
set_target_properties(drunc_zmq_client PROPERTIES
  OUTPUT_NAME drunc_zmq_client EXPORT_NAME client
  VERSION ${PROJECT_VERSION} SOVERSION ${DRUNC_SOVERSION})
# Installed headers: <drunc_zmq/client.hpp>; the headers themselves include
# "wire/...", "druncschema/..." and "drunc_zmq/...", found under include/drunc_zmq.
target_include_directories(drunc_zmq_client PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/client>
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/proto>
  $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/proto/gen>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/drunc_zmq>)
target_link_libraries(drunc_zmq_client PUBLIC protobuf::libprotobuf cppzmq)
target_compile_features(drunc_zmq_client INTERFACE cxx_std_17)
