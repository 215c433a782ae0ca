package dev.reauth

import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path
import kotlin.system.exitProcess

/**
 * Explains a flight recording (or any conformance transcript): each input, each command
 * it produced and the contract rule behind it, then why the session ended. The recording
 * is replayed first by the core (from the state it starts in) and its causes checked
 * against the core's, so an explanation never rests on a file that does not replay; the
 * text is the core's, the same as `python -m reauth.explain` and the Rust `explain` tool.
 *
 * `java -cp reauth.jar dev.reauth.Explain FILE`: exit 0 explained, 1 the file does not
 * replay (every differing step printed), 2 a file that cannot be read or is not a
 * transcript.
 */
object Explain {
    /** The timeline of a transcript (JSON text). Throws
     *  [ReauthException.InvalidTranscript] for text that is not one and
     *  [ReauthException.TranscriptMismatch] for one that does not replay. */
    fun explain(transcriptJson: String): String {
        NativePlatforms.check()
        return explainTranscript(transcriptJson)
    }

    @JvmStatic
    fun main(args: Array<String>) {
        if (args.size != 1 || args[0] == "-h" || args[0] == "--help") {
            System.err.println("usage: java -cp reauth.jar dev.reauth.Explain TRACE.json")
            exitProcess(2)
        }
        val path = args[0]
        val text = try {
            Files.readString(Path.of(path))
        } catch (e: IOException) {
            System.err.println("$path: cannot read: $e")
            exitProcess(2)
        }
        try {
            print(explain(text))
        } catch (e: ReauthException.TranscriptMismatch) {
            System.err.println("$path: ${e.message}; not explained")
            exitProcess(1)
        } catch (e: ReauthException) {
            System.err.println("$path: ${e.message}")
            exitProcess(2)
        }
    }
}
