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

/// True if `buffer` (a java.nio.ByteBuffer) reads multi-byte values in the machine's order, as the
/// kernels do; else false after throwing IllegalArgumentException naming `what`. A big-endian
/// buffer (ByteBuffer's default, and what slice()/duplicate() return) would be read as garbage.
static inline bool native_byte_order(JNIEnv* env, jobject buffer, const char* what) {
    struct Ids {
        jmethodID order = nullptr;
        jobject native = nullptr;  // global reference to ByteOrder.nativeOrder()
    };
    static const Ids ids = [env] {
        Ids found;
        jclass byte_buffer = env->FindClass("java/nio/ByteBuffer");
        jclass byte_order = env->FindClass("java/nio/ByteOrder");
        if (byte_buffer == nullptr || byte_order == nullptr) return found;
        jmethodID native_order =
            env->GetStaticMethodID(byte_order, "nativeOrder", "()Ljava/nio/ByteOrder;");
        found.order = env->GetMethodID(byte_buffer, "order", "()Ljava/nio/ByteOrder;");
        if (native_order == nullptr || found.order == nullptr) return found;
        found.native = env->NewGlobalRef(env->CallStaticObjectMethod(byte_order, native_order));
        return found;
    }();
    if (ids.order == nullptr || ids.native == nullptr) {
        if (!env->ExceptionCheck())
            throw_illegal_argument(env, "cannot read a buffer's byte order");
        return false;
    }
    jobject order = env->CallObjectMethod(buffer, ids.order);
    if (env->ExceptionCheck()) return false;
    const bool same = env->IsSameObject(order, ids.native);
    env->DeleteLocalRef(order);
    if (!same) {
        throw_illegal_argument(
            env, std::string(what) + " buffer is big-endian: set .order(ByteOrder.nativeOrder())");
    }
    return same;
}

/// The address of a direct buffer holding at least `needed_bytes` of single-byte elements (codes,
/// masks: byte order does not matter), or nullptr after throwing IllegalArgumentException naming
/// `what`. `allow_null` accepts a null buffer (returns nullptr without throwing; check
/// env->ExceptionCheck()).
static inline void* direct_bytes(JNIEnv* env, jobject buffer, int64_t needed_bytes,
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
        throw_illegal_argument(env, std::string(what) + " buffer holds " +
                                        std::to_string(capacity) + " bytes but " +
                                        std::to_string(needed_bytes) + " are needed");
        return nullptr;
    }
    return address;
}

/// As direct_bytes, for multi-byte elements (floats, halves, ints): the buffer must also be in
/// native byte order.
static inline void* direct_address(JNIEnv* env, jobject buffer, int64_t needed_bytes,
                                   const char* what, bool allow_null = false) {
    void* address = direct_bytes(env, buffer, needed_bytes, what, allow_null);
    if (address == nullptr || !native_byte_order(env, buffer, what)) return nullptr;
    return address;
}

/// False after throwing IllegalArgumentException naming `what` if `buffer` is read-only: a
/// read-only direct buffer still has an address, so native code could write through it.
static inline bool writable(JNIEnv* env, jobject buffer, const char* what) {
    jclass cls = env->GetObjectClass(buffer);
    jmethodID read_only = cls ? env->GetMethodID(cls, "isReadOnly", "()Z") : nullptr;
    if (read_only == nullptr) return false;  // exception pending
    const bool refused = env->CallBooleanMethod(buffer, read_only);
    if (env->ExceptionCheck()) return false;
    if (refused) throw_illegal_argument(env, std::string(what) + " buffer is read-only");
    return !refused;
}

/// As direct_address, for a buffer native code writes into: a read-only buffer is refused.
static inline void* writable_address(JNIEnv* env, jobject buffer, int64_t needed_bytes,
                                     const char* what, bool allow_null = false) {
    if (buffer != nullptr && !writable(env, buffer, what)) return nullptr;
    return direct_address(env, buffer, needed_bytes, what, allow_null);
}

}  // namespace twjni
