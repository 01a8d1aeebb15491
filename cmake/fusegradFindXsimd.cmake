# Optional xsimd lookup, shared by fusegrad's own build and its installed fusegradConfig.cmake.
#
# fusegrad_find_xsimd() sets FUSEGRAD_HAVE_XSIMD (TRUE/FALSE) in the caller's scope and, when
# xsimd is found, leaves a usable imported target named `xsimd` behind.
#
# Debian's xsimd 8.1 quirk: its exported target has no namespace (`xsimd`, not `xsimd::xsimd`)
# and its INTERFACE_LINK_LIBRARIES is a bare `xtl`. Unless an `xtl` target exists when something
# links `xsimd`, CMake treats that name as a library file and the link fails with
# "cannot find -lxtl". So: look xtl up first (xtl-dev provides the `xtl` target); if it still is
# not there, drop the dangling link item (xsimd only needs xtl for its optional xtl interop).
macro(fusegrad_find_xsimd)
  if(NOT TARGET xtl)
    find_package(xtl QUIET)
  endif()
  if(NOT TARGET xsimd)
    find_package(xsimd QUIET) # no version pin: Debian ships 8.1, upstream is at 13.x
  endif()
  if(TARGET xsimd)
    set(FUSEGRAD_HAVE_XSIMD TRUE)
    if(NOT TARGET xtl)
      get_target_property(_fusegrad_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
      if(_fusegrad_xsimd_links)
        list(REMOVE_ITEM _fusegrad_xsimd_links xtl)
        set_property(TARGET xsimd PROPERTY INTERFACE_LINK_LIBRARIES "${_fusegrad_xsimd_links}")
      endif()
      unset(_fusegrad_xsimd_links)
    endif()
  else()
    set(FUSEGRAD_HAVE_XSIMD FALSE)
  endif()
endmacro()
