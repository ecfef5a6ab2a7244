# What `cmake --install` puts under the prefix (docs/DEPLOY.md lists it):
#   bin/                      drunc-broker, drunc-pm
#   lib*/                     libdrunc_zmq_client.so (versioned SONAME), its CMake
#                             package (cmake/drunc_zmq) and pkg-config file (drunc-zmq.pc)
#   include/drunc_zmq/        the client library's headers, the wire codec's, the
#                             generated protobuf headers (proto/CMakeLists.txt), version.hpp
#   share/drunc-zmq/          example configurations, the .proto files
#   share/doc/drunc-zmq/      README and docs/
#   share/man/, share/bash-completion/, lib/systemd/system/  (cmake/man.cmake, cmake/service.cmake)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
include(${CMAKE_CURRENT_LIST_DIR}/client_library.cmake)

install(TARGETS drunc-broker drunc-pm RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)

install(TARGETS drunc_zmq_client EXPORT drunc_zmqTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(FILES client/client.hpp client/process_table.hpp client/handshake_monitor.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/drunc_zmq COMPONENT dev)
install(FILES ${PROJECT_BINARY_DIR}/generated/drunc_version.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/drunc_zmq RENAME version.hpp COMPONENT dev)

# find_package(drunc_zmq CONFIG) -> drunc_zmq::client
set(DRUNC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/drunc_zmq)
install(EXPORT drunc_zmqTargets NAMESPACE drunc_zmq:: DESTINATION ${DRUNC_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(cmake/drunc_zmqConfig.cmake.in ${PROJECT_BINARY_DIR}/drunc_zmqConfig.cmake
  INSTALL_DESTINATION ${DRUNC_CMAKE_DIR})
# 0.x: only the same minor version is compatible (as the SONAME says).
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(DRUNC_COMPATIBILITY SameMinorVersion)
else()
  set(DRUNC_COMPATIBILITY SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/drunc_zmqConfigVersion.cmake
  COMPATIBILITY ${DRUNC_COMPATIBILITY})
install(FILES ${PROJECT_BINARY_DIR}/drunc_zmqConfig.cmake ${PROJECT_BINARY_DIR}/drunc_zmqConfigVersion.cmake
        DESTINATION ${DRUNC_CMAKE_DIR} COMPONENT dev)

# pkg-config: drunc-zmq.pc, relocatable (paths from ${pcfiledir}), so that
# `cmake --install --prefix P` after configuring for another prefix still works.
file(RELATIVE_PATH DRUNC_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(cmake/drunc-zmq.pc.in ${PROJECT_BINARY_DIR}/drunc-zmq.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/drunc-zmq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT doc)
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT doc FILES_MATCHING PATTERN "*.md")
install(FILES config/broker.json config/demo-session.json config/ssh-example.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/drunc-zmq/config COMPONENT doc)

include(${CMAKE_CURRENT_LIST_DIR}/service.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/man.cmake)

if(DRUNC_BUILD_TESTS)
  add_subdirectory(tests/install)
endif()
