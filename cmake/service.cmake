# Running drunc-broker under systemd: libsystemd's sd_notify for Type=notify
# (broker/main.cpp), the units and the sysusers.d entry of its user.
#
# The units go to DRUNC_SYSTEMD_UNIT_DIR under the prefix (lib/systemd/system;
# systemd also reads /usr/local/lib/systemd/system). Their ExecStart names the
# installed drunc-broker, so they are written at install time, when the prefix
# is known (`cmake --install build --prefix P` may differ from the configured one).
pkg_check_modules(LIBSYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
target_link_libraries(drunc-broker PRIVATE PkgConfig::LIBSYSTEMD)

set(DRUNC_SYSTEMD_UNIT_DIR lib/systemd/system CACHE STRING "Where the systemd units go, relative to the prefix")
set(DRUNC_SYSUSERS_DIR lib/sysusers.d CACHE STRING "Where the sysusers.d entry goes, relative to the prefix")

foreach(unit drunc-broker.service drunc-broker@.service)
  install(CODE "
    set(DRUNC_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
    configure_file(\"${PROJECT_SOURCE_DIR}/config/systemd/${unit}.in\" \"${PROJECT_BINARY_DIR}/systemd/${unit}\" @ONLY)
    file(INSTALL \"${PROJECT_BINARY_DIR}/systemd/${unit}\"
         DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${DRUNC_SYSTEMD_UNIT_DIR}\")" COMPONENT service)
endforeach()
install(FILES config/systemd/drunc-zmq.sysusers DESTINATION ${DRUNC_SYSUSERS_DIR}
        RENAME drunc-zmq.conf COMPONENT service)
