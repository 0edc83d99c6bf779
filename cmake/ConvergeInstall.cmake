# Install rules and the exported CMake package, so that another project can
#
#   find_package(converge CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE converge::crdt)
#
# Each layer joins the install with one converge_install_layer() call (in the
# top-level CMakeLists.txt, after the layer's add_subdirectory), then
# converge_install_package() writes the export set and the package files:
#
#   <prefix>/include/crdt/...                      headers, same spelling as in the tree
#   <prefix>/<libdir>/cmake/converge/convergeTargets.cmake
#   <prefix>/<libdir>/cmake/converge/convergeConfig.cmake
#   <prefix>/<libdir>/cmake/converge/convergeConfigVersion.cmake
include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CONVERGE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/converge"
    CACHE STRING "Where convergeConfig.cmake is installed, relative to the prefix")

# converge_install_layer(<target>
#                        [HEADERS <dir>...]        folders of *.h, relative to the source root
#                        [EXCLUDE <dir>...]        folders under HEADERS that another layer installs
#                        [DEPENDENCIES "<find_dependency arguments>"...]
#                        [OPTIONAL_DEPENDENCIES "<find_package arguments>"...])
#
# Puts <target> into the export set convergeTargets (as converge::<EXPORT_NAME>),
# installs its headers keeping their path (crdt/or_set.h -> include/crdt/or_set.h;
# tests and sources are not installed), and records the packages its exported
# target needs: convergeConfig.cmake calls find_dependency(<arguments>) for each,
# so a dependency is looked for only when the layer that needs it is installed.
# OPTIONAL_DEPENDENCIES are looked for QUIETly: a consumer that lacks them can
# still use every other layer (converge::testing needs GTest and rapidcheck
# only in projects that link it).
function(converge_install_layer target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "HEADERS;EXCLUDE;DEPENDENCIES;OPTIONAL_DEPENDENCIES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "converge_install_layer: unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "converge_install_layer: no target ${target}; call it after the layer's "
                        "add_subdirectory()")
  endif()

  get_target_property(layer ${target} EXPORT_NAME)
  if(NOT layer)
    string(REGEX REPLACE "^converge_" "" layer "${target}")
  endif()

  install(
    TARGETS ${target}
    EXPORT convergeTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

  set(excludes "")
  foreach(dir IN LISTS arg_EXCLUDE)
    string(REGEX REPLACE "([][+.*()^$?|\\])" "\\\\\\1" dir_regex "${dir}")
    list(APPEND excludes REGEX "/${dir_regex}$" EXCLUDE)
  endforeach()
  foreach(dir IN LISTS arg_HEADERS)
    install(
      DIRECTORY "${PROJECT_SOURCE_DIR}/${dir}/"
      DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/${dir}"
      FILES_MATCHING
      PATTERN "*.h" ${excludes})
  endforeach()

  get_target_property(type ${target} TYPE)
  set_property(GLOBAL APPEND PROPERTY CONVERGE_INSTALLED_LAYERS "${layer}")
  set_property(GLOBAL APPEND PROPERTY CONVERGE_INSTALLED_TYPES "${type}")
  foreach(dependency IN LISTS arg_DEPENDENCIES)
    set_property(GLOBAL APPEND PROPERTY CONVERGE_FIND_DEPENDENCIES
                                        "find_dependency(${dependency})  # for converge::${layer}")
  endforeach()
  foreach(dependency IN LISTS arg_OPTIONAL_DEPENDENCIES)
    set_property(GLOBAL APPEND PROPERTY CONVERGE_FIND_DEPENDENCIES
                                        "find_package(${dependency} QUIET)  # for converge::${layer}")
  endforeach()
endfunction()

# Writes the export set and the package config and version files. Call once,
# after every converge_install_layer().
function(converge_install_package)
  get_property(layers GLOBAL PROPERTY CONVERGE_INSTALLED_LAYERS)
  get_property(types GLOBAL PROPERTY CONVERGE_INSTALLED_TYPES)
  get_property(dependencies GLOBAL PROPERTY CONVERGE_FIND_DEPENDENCIES)
  if(NOT layers)
    message(FATAL_ERROR "converge_install_package: no layer was installed")
  endif()

  # Substituted into convergeConfig.cmake.in.
  set(CONVERGE_INSTALLED_LAYERS "${layers}")
  if(dependencies)
    list(REMOVE_DUPLICATES dependencies)
    list(JOIN dependencies "\n" CONVERGE_FIND_DEPENDENCIES)
  else()
    set(CONVERGE_FIND_DEPENDENCIES "# (none: the installed layers need only the standard library)")
  endif()

  install(
    EXPORT convergeTargets
    NAMESPACE converge::
    FILE convergeTargets.cmake
    DESTINATION "${CONVERGE_INSTALL_CMAKEDIR}")

  configure_package_config_file(
    "${PROJECT_SOURCE_DIR}/cmake/convergeConfig.cmake.in"
    "${PROJECT_BINARY_DIR}/convergeConfig.cmake"
    INSTALL_DESTINATION "${CONVERGE_INSTALL_CMAKEDIR}")

  # While every installed layer is header-only, the package fits any
  # architecture; a compiled layer makes the version file check the pointer size.
  set(arch_independent "")
  list(REMOVE_DUPLICATES types)
  if(types STREQUAL "INTERFACE_LIBRARY")
    set(arch_independent ARCH_INDEPENDENT)
  endif()
  write_basic_package_version_file(
    "${PROJECT_BINARY_DIR}/convergeConfigVersion.cmake"
    VERSION ${PROJECT_VERSION}
    COMPATIBILITY SameMajorVersion ${arch_independent})

  install(FILES "${PROJECT_BINARY_DIR}/convergeConfig.cmake"
                "${PROJECT_BINARY_DIR}/convergeConfigVersion.cmake"
          DESTINATION "${CONVERGE_INSTALL_CMAKEDIR}")
endfunction()
