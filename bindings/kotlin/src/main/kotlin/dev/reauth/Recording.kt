package dev.reauth

import org.json.JSONObject

/** The flight recorder's default capacity in the adapters: the last 64 inputs (at least;
 *  fewer than 128). */
const val DEFAULT_FLIGHT_RECORDER: Int = 64

/**
 * A flight recording: the coordinator's last inputs, the commands each produced and the
 * contract rule behind each command, every token replaced by a placeholder. [json] is a
 * transcript (`tests/vectors` format) that replays the incident in every reauth replayer;
 * [explain] prints it as a timeline that ends with why the session ended.
 */
class Recording(val json: String) {
    /** The timeline (the core's explanation, as [Explain]). */
    fun explain(): String {
        NativePlatforms.check()
        return explainTranscript(json)
    }

    /** How many inputs it holds. */
    val size: Int get() = JSONObject(json).getJSONArray("steps").length()

    override fun toString(): String = "Recording($size inputs)"
}
