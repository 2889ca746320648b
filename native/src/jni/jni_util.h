// Helpers shared by the JNI files: turning tw_status into Java exceptions and checking direct
// buffers before native code touches them. Internal linkage only (static inline).
#pragma once

#include <jni.h>

#include <cstdint>
#include <string>

#include "tilewise/tilewise.h"

namespace twjni {

/// Throws the Java exception matching `status` with `message`.
static inline void throw_status(JNIEnv* env, tw_status status, const char* message) {
    const char* cls = "java/lang/IllegalStateException";
    switch (status) {
        case TW_ERR_INVALID_ARGUMENT: cls = "java/lang/IllegalArgumentException"; break;
        case TW_ERR_UNSUPPORTED: cls = "java/lang/UnsupportedOperationException"; break;
        case TW_ERR_OUT_OF_MEMORY: cls = "java/lang/OutOfMemoryError"; break;
        default: break;
    }
    jclass c = env->FindClass(cls);
    if (c != nullptr) env->ThrowNew(c, message);
}

/// If status is not TW_OK, throws with tw_last_error() and returns true.
static inline bool check(JNIEnv* env, tw_status status) {
    if (status == TW_OK) return false;
    throw_status(env, status, tw_last_error());
    return true;
}

static inline void throw_illegal_argument(JNIEnv* env, const std::string& message) {
    throw_status(env, TW_ERR_INVALID_ARGUMENT, message.c_str());
}

/// The address of a direct buffer holding at least `needed_bytes`, or nullptr after throwing
/// IllegalArgumentException naming `what`. `allow_null` accepts a null buffer (returns nullptr
/// without throwing; check env->ExceptionCheck()).
static inline void* direct_address(JNIEnv* env, jobject buffer, int64_t needed_bytes,
                                   const char* what, bool allow_null = false) {
    if (buffer == nullptr) {
        if (!allow_null) throw_illegal_argument(env, std::string(what) + " buffer is null");
        return nullptr;
    }
    void* address = env->GetDirectBufferAddress(buffer);
    if (address == nullptr) {
        throw_illegal_argument(env, std::string(what) + " buffer is not a direct buffer");
        return nullptr;
    }
    const jlong capacity = env->GetDirectBufferCapacity(buffer);
    if (needed_bytes < 0 || capacity < needed_bytes) {
        throw_illegal_argument(env, std::string(what) + " buffer holds " + std::to_string(capacity) +
                                        " bytes but " + std::to_string(needed_bytes) +
                                        " are needed");
        return nullptr;
    }
    return address;
}

/// As direct_address, for a buffer native code writes into: a read-only direct buffer also has an
/// address, so it is refused here (IllegalArgumentException naming `what`) instead of written.
static inline void* writable_address(JNIEnv* env, jobject buffer, int64_t needed_bytes,
                                     const char* what, bool allow_null = false) {
    if (buffer != nullptr) {
        jclass cls = env->GetObjectClass(buffer);
        jmethodID read_only = cls ? env->GetMethodID(cls, "isReadOnly", "()Z") : nullptr;
        if (read_only == nullptr) return nullptr;  // exception pending
        if (env->CallBooleanMethod(buffer, read_only)) {
            throw_illegal_argument(env, std::string(what) + " buffer is read-only");
            return nullptr;
        }
        if (env->ExceptionCheck()) return nullptr;
    }
    return direct_address(env, buffer, needed_bytes, what, allow_null);
}

}  // namespace twjni

