#!/usr/bin/env bash
# Builds the release C library and installs it for C and C++ projects:
#
#   ffi/install.sh /usr/local            # or any prefix
#
#   PREFIX/include/reauth.h
#   PREFIX/lib/libreauth_ffi.a, libreauth_ffi.so(.0)
#   PREFIX/lib/pkgconfig/reauth.pc              -> pkg-config --cflags --libs reauth
#   PREFIX/lib/cmake/reauth/reauthConfig.cmake  -> find_package(reauth) + reauth::reauth
set -euo pipefail
prefix="${1:?usage: ffi/install.sh PREFIX}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build -q --locked --release -p reauth-ffi
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/reauth"
prefix="$(cd "$prefix" && pwd)"
install -m 644 ffi/include/reauth.h "$prefix/include/"
install -m 644 target/release/libreauth_ffi.a "$prefix/lib/"
install -m 755 target/release/libreauth_ffi.so "$prefix/lib/libreauth_ffi.so.0"
ln -sf libreauth_ffi.so.0 "$prefix/lib/libreauth_ffi.so"

cat > "$prefix/lib/pkgconfig/reauth.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: reauth
Description: Access-token refresh, correct once: the C ABI of reauth
Version: $version
Libs: -L\${libdir} -lreauth_ffi
Libs.private: -lpthread -ldl -lm
Cflags: -I\${includedir}
PC

cat > "$prefix/lib/cmake/reauth/reauthConfig.cmake" <<'CMAKE'
# find_package(reauth) defines reauth::reauth (shared) and reauth::reauth_static.
get_filename_component(_reauth_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
include(CMakeFindDependencyMacro)
find_dependency(Threads)
if(NOT TARGET reauth::reauth)
  add_library(reauth::reauth SHARED IMPORTED)
  set_target_properties(reauth::reauth PROPERTIES
    IMPORTED_LOCATION "${_reauth_prefix}/lib/libreauth_ffi.so.0"
    IMPORTED_SONAME "libreauth_ffi.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${_reauth_prefix}/include")
  add_library(reauth::reauth_static STATIC IMPORTED)
  set_target_properties(reauth::reauth_static PROPERTIES
    IMPORTED_LOCATION "${_reauth_prefix}/lib/libreauth_ffi.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_reauth_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m")
endif()
unset(_reauth_prefix)
CMAKE
cat > "$prefix/lib/cmake/reauth/reauthConfigVersion.cmake" <<CMAKE
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
CMAKE
echo "installed reauth $version into $prefix"
