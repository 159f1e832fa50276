/* The few macros ring's C code reads from the macOS SDK's TargetConditionals.h, so
 * that `cargo clippy --target aarch64-apple-darwin` can run its build script on Linux.
 * Only for checking: nothing built with this is linked or shipped. */
#pragma once
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_SIMULATOR 0
#define TARGET_OS_EMBEDDED 0
