# NogilToolkit.cmake: compile the [tool.nogil] declaration of pyproject.toml into module init.
#
#   include(NogilToolkit)                 # found through nogil-cmake's cmake.module entry point
#   python_add_library(_speedups MODULE src/pkg/_speedups.c WITH_SOABI)
#   nogil_declare(_speedups pkg._speedups)
#   nogil_declare(_fast pkg._fast EXPORT_HOOK)   # _fast also defines PyModExport__fast (3.15)
#
# nogil_declare(<target> <module>) runs `python -m nogil_toolkit shim` at configure time: the
# same generator and flags as the setuptools and meson integrations. If [tool.nogil] covers
# <module>, the generated shim is compiled as an object library of its own and linked into
# <target>, and <target>'s sources get -DPyInit_<name>=<hidden alias> and the Cython macro.
# At the end of configuration the declared modules are checked against [tool.nogil.modules]
# (an override that names none of them fails) and, under scikit-build-core, the declaration
# record nogil-declaration.json is installed into the wheel's .dist-info.
#
# EXPORT_HOOK: the module also defines Python 3.15's export hook PyModExport_<name> (PEP 793),
# which CPython 3.15 prefers over PyInit_<name>; the shim then wraps the hook as well. CMake
# cannot relink a module after looking at it, so the build says so (setuptools finds out); a
# module that defines the hook without EXPORT_HOOK fails its build after linking.
#
# Variables: NOGIL_PROJECT_DIR (default CMAKE_SOURCE_DIR) holds pyproject.toml; the
# interpreter is Python_EXECUTABLE (FindPython), Python3_EXECUTABLE or PYTHON_EXECUTABLE.

include_guard(GLOBAL)
cmake_minimum_required(VERSION 3.19)  # cmake_language(DEFER)

if(NOT DEFINED NOGIL_PROJECT_DIR)
  set(NOGIL_PROJECT_DIR "${CMAKE_SOURCE_DIR}")
endif()

function(_nogil_python out_var)
  foreach(candidate Python_EXECUTABLE Python3_EXECUTABLE PYTHON_EXECUTABLE)
    if(${candidate})
      set(${out_var} "${${candidate}}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  message(FATAL_ERROR "nogil: no Python interpreter: call find_package(Python COMPONENTS Interpreter "
                      "Development.Module) before nogil_declare()")
endfunction()

function(_nogil_toolkit out_var)
  _nogil_python(python)
  # The tool's stderr goes straight to the console: CMake would re-wrap its error lines.
  execute_process(
    COMMAND "${python}" -m nogil_toolkit shim --project "${NOGIL_PROJECT_DIR}" ${ARGN}
    OUTPUT_VARIABLE output RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "nogil: [tool.nogil] cannot be applied (nogil-toolkit shim exited ${status}, "
                        "its error is above)")
  endif()
  set(${out_var} "${output}" PARENT_SCOPE)
endfunction()

function(nogil_declare target module)
  cmake_parse_arguments(PARSE_ARGV 2 nogil "EXPORT_HOOK" "" "")
  if(nogil_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "nogil_declare: unexpected arguments '${nogil_UNPARSED_ARGUMENTS}' (only EXPORT_HOOK)")
  endif()
  set(hook "")
  if(nogil_EXPORT_HOOK)
    set(hook --export-hook "${module}")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "nogil_declare: no target named '${target}' (declare after python_add_library)")
  endif()
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  set(cplusplus "")
  if(NOT "C" IN_LIST languages)
    set(cplusplus --cplusplus)
  endif()
  _nogil_toolkit(output --output-dir "${CMAKE_BINARY_DIR}/nogil-shims" ${cplusplus} ${hook} "${module}")
  # One line: module, declaration, shim, rename flag, Cython flag, link flags, hook rename flag
  # (tab-separated).
  string(REGEX REPLACE "\r?\n$" "" output "${output}")
  string(REPLACE "\t" ";" fields "${output}")
  list(GET fields 1 declaration)
  set_property(GLOBAL APPEND PROPERTY NOGIL_MODULES "${module}")
  if(NOT declaration STREQUAL "none")
    list(GET fields 2 shim)
    list(GET fields 3 rename)
    list(GET fields 4 cython)
    list(GET fields 5 link)
    list(GET fields 6 hook_rename)
    string(MAKE_C_IDENTIFIER "nogil_shim_${module}" shim_target)
    add_library(${shim_target} OBJECT "${shim}")
    set_target_properties(${shim_target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    # The module's own include path (Python's headers among them), read through its usage requirements.
    target_include_directories(${shim_target} PRIVATE $<TARGET_PROPERTY:${target},INCLUDE_DIRECTORIES>)
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:${shim_target}>)
    target_compile_definitions(${target} PRIVATE "${rename}" "${hook_rename}" "${cython}")
    if(link)
      separate_arguments(link UNIX_COMMAND "${link}")
      target_link_options(${target} PRIVATE ${link})
    endif()
    message(STATUS "nogil: ${module} declares ${declaration} at module init")
    if(declaration STREQUAL "not-used")
      _nogil_audit_step(${target} ${module})
    endif()
    if(NOT nogil_EXPORT_HOOK)
      _nogil_hook_check(${target} ${module})
    endif()
  endif()
  get_property(finishing GLOBAL PROPERTY NOGIL_FINISH_DEFERRED)
  if(NOT finishing)
    set_property(GLOBAL PROPERTY NOGIL_FINISH_DEFERRED TRUE)
    cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _nogil_finish)
  endif()
endfunction()

# The source audit of a module declared not-used ([tool.nogil.audit] build, default "warn"): a
# PRE_LINK step of <target> running `python -m nogil_toolkit audit --build <module>` on the
# target's final SOURCES and include path. Generator expressions make them exact (sources
# added later by target_sources() or through generator expressions count, the shim's objects
# are left out by the tool), and a PRE_LINK step runs again exactly when the module is
# relinked, that is when one of its sources changed. The tool reads the mode itself: "off"
# prints nothing, "error" with findings exits 1 and the link step fails.
function(_nogil_audit_step target module)
  _nogil_python(python)
  set(includes "$<TARGET_PROPERTY:${target},INCLUDE_DIRECTORIES>")
  add_custom_command(TARGET ${target} PRE_LINK
    COMMAND "${python}" -m nogil_toolkit audit --project "${NOGIL_PROJECT_DIR}" --build "${module}"
            --sources-dir "$<TARGET_PROPERTY:${target},SOURCE_DIR>"
            "$<$<BOOL:${includes}>:-I$<JOIN:${includes},;-I>>"
            "$<TARGET_PROPERTY:${target},SOURCES>"
    WORKING_DIRECTORY "${NOGIL_PROJECT_DIR}"
    COMMAND_EXPAND_LISTS VERBATIM)
endfunction()

# A module declared without EXPORT_HOOK must not define Python 3.15's PyModExport_<name>: its
# sources are compiled with the hook renamed, so a hook they define stays exported under the
# renamed name, unwrapped, and CPython 3.15 would never see the declaration's hook. A POST_BUILD
# step reads the linked module's exports and fails the build naming the fix.
function(_nogil_hook_check target module)
  _nogil_python(python)
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND "${python}" -m nogil_toolkit shim --project "${NOGIL_PROJECT_DIR}"
            --check-built "$<TARGET_FILE:${target}>" "${module}"
    VERBATIM)
endfunction()

# Runs once, after the top-level CMakeLists.txt: every nogil_declare() call is known by then.
function(_nogil_finish)
  get_property(modules GLOBAL PROPERTY NOGIL_MODULES)
  set(record "${CMAKE_BINARY_DIR}/nogil-declaration.json")
  _nogil_toolkit(ignored --record "${record}" ${modules})
  if(DEFINED SKBUILD_METADATA_DIR)
    install(FILES "${record}" DESTINATION "${SKBUILD_METADATA_DIR}")
  endif()
endfunction()
