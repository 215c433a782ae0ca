package dev.reauth.store

import dev.reauth.Credentials
import org.json.JSONArray
import org.json.JSONException
import org.json.JSONObject
import java.io.IOException
import java.io.RandomAccessFile
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.channels.FileLock
import java.nio.channels.OverlappingFileLockException
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction
import java.nio.file.AtomicMoveNotSupportedException
import java.nio.file.Files
import java.nio.file.LinkOption
import java.nio.file.NoSuchFileException
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption
import java.nio.file.attribute.PosixFilePermission
import java.nio.file.attribute.PosixFilePermissions
import java.util.concurrent.locks.ReentrantLock
import java.util.logging.Logger
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
 * the Python package's `FileStore`. A save writes `PATH.tmp` (created owner-only, 0600),
 * forces it to disk, moves it over the file atomically and forces the directory, so a
 * reader never sees half a write. A lock file next to it (`PATH.lock`) serialises
 * refreshes across processes ([locked]); within one process a re-entrant lock stands in
 * front of it. The temporary file has that one fixed name and is touched only under that
 * lock, so a process killed mid-save (SIGKILL runs no cleanup) leaves at most that one
 * file, which the next save replaces and the next load or clear removes.
 *
 * A file that is not a credentials file is an [IllegalStateException] naming the file and
 * the field, never the tokens; loading a file other users can read or write logs a
 * warning (logger `dev.reauth`).
 *
 * The locks are the JVM's `FileChannel` locks (`fcntl` on Linux), which do not exclude
 * the Python and Rust packages' `flock`: those packages read and write the same file, but
 * not at the same time as this one.
 */
class FileStore(val path: Path) : CredentialStore {
    private val lockPath: Path = sibling(".lock")
    private val tmpPath: Path = sibling(".tmp")
    private val threadLock = ReentrantLock()
    private var fileLock: FileLock? = null
    private var lockFile: RandomAccessFile? = null

    /** The mode last warned about, so that the load before every refresh does not repeat it. */
    @Volatile private var warnedMode: String? = null

    private fun sibling(suffix: String): Path = path.resolveSibling(path.fileName.toString() + suffix)

    override fun load(): StoredCredentials? {
        // Best effort: a live save may hold the lock; the next save or clear takes care of it.
        if (Files.exists(tmpPath, LinkOption.NOFOLLOW_LINKS)) {
            try {
                tryLocked { Files.deleteIfExists(tmpPath) }
            } catch (e: IOException) {
                // left for the next save or clear
            }
        }
        val bytes = try {
            checkMode()
            Files.readAllBytes(path)
        } catch (e: NoSuchFileException) {
            return null
        }
        return parse(bytes)
    }

    override fun save(credentials: StoredCredentials): Unit = locked {
        val body = JSONObject()
            .put("access_token", credentials.accessToken)
            .put("refresh_token", credentials.refreshToken ?: JSONObject.NULL)
            .put("expires_at", credentials.expiresAtEpochMs?.let { it / 1000.0 } ?: JSONObject.NULL)
            .toString()
            .toByteArray(Charsets.UTF_8)
        // Under the lock no other save uses PATH.tmp: what is there is a killed save's (or
        // not ours: a link is removed, never followed). CREATE_NEW creates it 0600.
        Files.deleteIfExists(tmpPath)
        try {
            FileChannel.open(tmpPath, setOf(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), OWNER_ONLY).use { channel ->
                val buffer = ByteBuffer.wrap(body)
                while (buffer.hasRemaining()) channel.write(buffer)
                channel.force(true)
            }
            try {
                Files.move(tmpPath, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
            } catch (e: AtomicMoveNotSupportedException) {
                Files.move(tmpPath, path, StandardCopyOption.REPLACE_EXISTING)
            }
        } finally {
            Files.deleteIfExists(tmpPath)
        }
        forceDirectory()
    }

    override fun clear(): Unit = locked {
        Files.deleteIfExists(path)
        Files.deleteIfExists(tmpPath)
        forceDirectory()
    }

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

    /** [block] under the lock if it is free now (or this thread holds it); otherwise nothing. */
    private fun tryLocked(block: () -> Unit) {
        if (!threadLock.tryLock()) return
        try {
            if (threadLock.holdCount > 1) return block()
            RandomAccessFile(lockPath.toFile(), "rw").use { file ->
                val lock = try {
                    file.channel.tryLock()
                } catch (e: OverlappingFileLockException) {
                    null // another FileStore of this path in this JVM holds it
                } ?: return
                try {
                    block()
                } finally {
                    lock.release()
                }
            }
        } finally {
            threadLock.unlock()
        }
    }

    /** Makes a rename in the directory durable, where the platform allows (best effort). */
    private fun forceDirectory() {
        try {
            FileChannel.open(path.toAbsolutePath().parent, StandardOpenOption.READ).use { it.force(true) }
        } catch (e: IOException) {
            // not on this platform (Windows cannot open a directory)
        }
    }

    private fun checkMode() {
        val permissions = try {
            Files.getPosixFilePermissions(path)
        } catch (e: UnsupportedOperationException) {
            return // not a POSIX file system
        }
        if (permissions.all { it in OWNER }) {
            warnedMode = null
            return
        }
        val mode = "%04o".format(PosixFilePermission.entries.filter { it in permissions }.sumOf { 1 shl (8 - it.ordinal) })
        if (mode == warnedMode) return
        warnedMode = mode
        log.warning("$path has mode $mode: other users can read or change the tokens in it; run chmod 600 $path")
    }

    /** The stored credentials in [bytes]; the error names the file and the field, never a token. */
    private fun parse(bytes: ByteArray): StoredCredentials {
        fun corrupt(why: String): Nothing = throw IllegalStateException("$path: $why")
        val text = try {
            Charsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(bytes))
                .toString()
        } catch (e: CharacterCodingException) {
            corrupt("not a credentials file (not UTF-8 text)")
        }
        val trimmed = text.trimStart()
        if (!trimmed.startsWith("{")) {
            corrupt(if (trimmed.startsWith("[")) "not a credentials file (the JSON is an array, not an object)" else "not a credentials file (not a JSON object)")
        }
        // org.json's messages can quote the text: never passed on.
        val json = try {
            JSONObject(text)
        } catch (e: JSONException) {
            corrupt("not a credentials file (invalid JSON)")
        }
        val access = json.opt("access_token") ?: corrupt("field \"access_token\" is missing")
        if (access !is String || access.isEmpty()) {
            corrupt("field \"access_token\" must be a non-empty string, got ${jsonType(access)}")
        }
        val refresh = when (val value = json.opt("refresh_token")) {
            null, JSONObject.NULL -> null
            is String -> value
            else -> corrupt("field \"refresh_token\" must be a string or null, got ${jsonType(value)}")
        }
        val expiresAt = when (val value = json.opt("expires_at")) {
            null, JSONObject.NULL -> null
            // Seconds since the epoch, as the Python package writes them.
            is Number -> value.toDouble().takeIf { it.isFinite() }?.let { (it * 1000).toLong() }
                ?: corrupt("field \"expires_at\" must be a finite number")
            else -> corrupt("field \"expires_at\" must be a number or null, got ${jsonType(value)}")
        }
        return StoredCredentials(access, refresh, expiresAt)
    }

    override fun toString(): String = "FileStore($path)"

    private companion object {
        val log: Logger = Logger.getLogger("dev.reauth")
        val OWNER = setOf(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_EXECUTE)
        val OWNER_ONLY = PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"))

        /** The JSON type of [value], for an error message: never its content. */
        fun jsonType(value: Any): String = when (value) {
            JSONObject.NULL -> "null"
            is Boolean -> "a boolean"
            is Number -> "a number"
            is String -> if (value.isEmpty()) "an empty string" else "a string"
            is JSONArray -> "an array"
            else -> "an object"
        }
    }
}
