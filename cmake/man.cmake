# Man pages, built with the programs: drunc-broker(1) and drunc-pm(1) by
# help2man from --help and --version (drunc-pm's COMMANDS section from each
# subcommand's --help, man/commands.sh), drunc-zmq-config(5) by go-md2man from
# docs/CONFIG.md (tables as lists, man/tables_to_lists.awk). Both tools are
# Debian packages; without them the pages are skipped, with a message
# (DRUNC_MAN=OFF skips them, ON requires them). And the bash completion of drunc-pm.
set(DRUNC_MAN AUTO CACHE STRING "Build and install the man pages: AUTO (if help2man and go-md2man are found), ON, OFF")
set_property(CACHE DRUNC_MAN PROPERTY STRINGS AUTO ON OFF)

install(FILES completion/drunc-pm DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT runtime)

if(DRUNC_MAN STREQUAL "OFF")
  return()
endif()
find_program(HELP2MAN help2man)
find_program(GO_MD2MAN go-md2man)
if(NOT HELP2MAN OR NOT GO_MD2MAN)
  if(DRUNC_MAN STREQUAL "ON")
    message(FATAL_ERROR "DRUNC_MAN=ON needs help2man and go-md2man (apt-get install help2man go-md2man)")
  endif()
  message(STATUS "Man pages: skipped (no help2man or go-md2man; scripts/install-deps.sh --docs installs them)")
  return()
endif()

set(MAN_DIR ${PROJECT_BINARY_DIR}/man)
set(MAN_SOURCE ${PROJECT_SOURCE_DIR}/man)
add_custom_command(OUTPUT ${MAN_DIR}/drunc-broker.1
  COMMAND ${CMAKE_COMMAND} -E make_directory ${MAN_DIR}
  COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section 1 --source "drunc-zmq ${PROJECT_VERSION}"
          --include ${MAN_SOURCE}/drunc-broker.h2m --output ${MAN_DIR}/drunc-broker.1 $<TARGET_FILE:drunc-broker>
  DEPENDS drunc-broker ${MAN_SOURCE}/drunc-broker.h2m
  COMMENT "help2man drunc-broker.1")
add_custom_command(OUTPUT ${MAN_DIR}/drunc-pm.1
  COMMAND ${CMAKE_COMMAND} -E make_directory ${MAN_DIR}
  COMMAND bash ${MAN_SOURCE}/commands.sh $<TARGET_FILE:drunc-pm> > ${MAN_DIR}/drunc-pm-commands.h2m
  COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section 1 --source "drunc-zmq ${PROJECT_VERSION}"
          --include ${MAN_SOURCE}/drunc-pm.h2m --include ${MAN_DIR}/drunc-pm-commands.h2m
          --output ${MAN_DIR}/drunc-pm.1 $<TARGET_FILE:drunc-pm>
  DEPENDS drunc-pm ${MAN_SOURCE}/drunc-pm.h2m ${MAN_SOURCE}/commands.sh
  COMMENT "help2man drunc-pm.1")
set(DRUNC_DATADIR ${CMAKE_INSTALL_FULL_DATADIR})
set(DRUNC_DOCDIR ${CMAKE_INSTALL_FULL_DOCDIR})
configure_file(${MAN_SOURCE}/drunc-zmq-config.5.head.md ${MAN_DIR}/drunc-zmq-config.5.head.md @ONLY)
configure_file(${MAN_SOURCE}/drunc-zmq-config.5.tail.md ${MAN_DIR}/drunc-zmq-config.5.tail.md @ONLY)
add_custom_command(OUTPUT ${MAN_DIR}/drunc-zmq-config.5
  COMMAND awk -f ${MAN_SOURCE}/tables_to_lists.awk ${PROJECT_SOURCE_DIR}/docs/CONFIG.md > ${MAN_DIR}/config-body.md
  COMMAND ${CMAKE_COMMAND} -E cat ${MAN_DIR}/drunc-zmq-config.5.head.md ${MAN_DIR}/config-body.md
          ${MAN_DIR}/drunc-zmq-config.5.tail.md > ${MAN_DIR}/drunc-zmq-config.5.md
  COMMAND ${GO_MD2MAN} -in ${MAN_DIR}/drunc-zmq-config.5.md -out ${MAN_DIR}/drunc-zmq-config.5
  DEPENDS ${PROJECT_SOURCE_DIR}/docs/CONFIG.md ${MAN_SOURCE}/tables_to_lists.awk
          ${MAN_DIR}/drunc-zmq-config.5.head.md ${MAN_DIR}/drunc-zmq-config.5.tail.md
  COMMENT "go-md2man drunc-zmq-config.5")
add_custom_target(drunc_man ALL DEPENDS ${MAN_DIR}/drunc-broker.1 ${MAN_DIR}/drunc-pm.1 ${MAN_DIR}/drunc-zmq-config.5)
install(FILES ${MAN_DIR}/drunc-broker.1 ${MAN_DIR}/drunc-pm.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT doc)
install(FILES ${MAN_DIR}/drunc-zmq-config.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5 COMPONENT doc)
