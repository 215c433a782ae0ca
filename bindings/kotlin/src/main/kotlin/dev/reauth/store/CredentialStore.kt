package dev.reauth.store

import dev.reauth.Credentials
import org.json.JSONObject
import java.io.RandomAccessFile
import java.nio.channels.FileLock
import java.nio.file.AtomicMoveNotSupportedException
import java.nio.file.Files
import java.nio.file.NoSuchFileException
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.attribute.PosixFilePermissions
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock

/**
 * Credentials as stored, with the access token's expiry as wall-clock time
 * (`System.currentTimeMillis()`), never as the lifetime the server stated: a monotonic
 * clock does not survive a restart (contract §12.1). [toString] never shows the tokens.
 */
class StoredCredentials(
    val accessToken: String,
    val refreshToken: String? = null,
    /** When the access token expires, in epoch milliseconds; `null` if never. */
    val expiresAtEpochMs: Long? = null,
) {
    /** Credentials to log in (or report a refresh) with: the lifetime is what is left of
     *  the stored expiry, 0 if it passed (the token is then refreshed before use). */
    fun toCredentials(nowEpochMs: Long = System.currentTimeMillis()): Credentials =
        Credentials(accessToken, refreshToken, expiresAtEpochMs?.let { maxOf(0L, it - nowEpochMs) })

    override fun equals(other: Any?): Boolean =
        other is StoredCredentials && other.accessToken == accessToken &&
            other.refreshToken == refreshToken && other.expiresAtEpochMs == expiresAtEpochMs

    override fun hashCode(): Int = accessToken.hashCode()

    override fun toString(): String =
        "StoredCredentials(accessToken=<redacted>, refreshToken=${if (refreshToken == null) "null" else "<redacted>"}, " +
            "expiresAtEpochMs=$expiresAtEpochMs)"
}

/**
 * Where credentials live between refreshes and between runs. [locked] is held around a
 * refresh and around the re-read after a rejection (contract §12.2); it must be
 * re-entrant for the thread holding it.
 */
interface CredentialStore {
    fun load(): StoredCredentials?
    fun save(credentials: StoredCredentials)
    fun clear()
    fun <T> locked(block: () -> T): T
}

/** Credentials in this process only (the default). */
class MemoryStore(initial: StoredCredentials? = null) : CredentialStore {
    private val lock = ReentrantLock()
    private var credentials: StoredCredentials? = initial

    override fun load(): StoredCredentials? = lock.withLock { credentials }
    override fun save(credentials: StoredCredentials): Unit = lock.withLock { this.credentials = credentials }
    override fun clear(): Unit = lock.withLock { credentials = null }
    override fun <T> locked(block: () -> T): T = lock.withLock(block)
}

/**
 * Credentials in a JSON file shared by several processes of one app — the same format as
 * the Python package's `FileStore`. Writes go to a temporary file in the same directory,
 * then replace the file atomically; the file is created owner-only (0600). A lock file
 * next to it (`PATH.lock`) serialises refreshes across processes ([locked]); within one
 * process a re-entrant lock stands in front of it.
 */
class FileStore(val path: Path) : CredentialStore {
    private val lockPath: Path = path.resolveSibling(path.fileName.toString() + ".lock")
    private val threadLock = ReentrantLock()
    private var fileLock: FileLock? = null
    private var lockFile: RandomAccessFile? = null

    override fun load(): StoredCredentials? {
        val text = try {
            Files.readString(path)
        } catch (e: NoSuchFileException) {
            return null
        }
        val json = try {
            JSONObject(text)
        } catch (e: org.json.JSONException) {
            throw IllegalStateException("$path: not a credentials file")
        }
        val access = json.optString("access_token", "")
        if (access.isEmpty()) throw IllegalStateException("$path: not a credentials file (no access_token)")
        val expires = json.opt("expires_at")
        return StoredCredentials(
            access,
            if (json.isNull("refresh_token")) null else json.getString("refresh_token"),
            // Python writes seconds as a float; this store writes the same.
            if (expires == null || json.isNull("expires_at")) null else (json.getDouble("expires_at") * 1000).toLong(),
        )
    }

    override fun save(credentials: StoredCredentials): Unit = locked {
        val json = JSONObject()
            .put("access_token", credentials.accessToken)
            .put("refresh_token", credentials.refreshToken ?: JSONObject.NULL)
            .put("expires_at", credentials.expiresAtEpochMs?.let { it / 1000.0 } ?: JSONObject.NULL)
        val dir = path.toAbsolutePath().parent
        val tmp = Files.createTempFile(dir, ".reauth-", ".tmp", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))
        try {
            Files.writeString(tmp, json.toString())
            try {
                Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
            } catch (e: AtomicMoveNotSupportedException) {
                Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING)
            }
        } finally {
            Files.deleteIfExists(tmp)
        }
    }

    override fun clear(): Unit = locked { Files.deleteIfExists(path) }

    override fun <T> locked(block: () -> T): T = threadLock.withLock {
        val outermost = threadLock.holdCount == 1
        if (outermost) {
            val file = RandomAccessFile(lockPath.toFile(), "rw")
            lockFile = file
            fileLock = file.channel.lock()
        }
        try {
            block()
        } finally {
            if (outermost) {
                fileLock?.release()
                lockFile?.close()
                fileLock = null
                lockFile = null
            }
        }
    }

    override fun toString(): String = "FileStore($path)"
}
