package dev.reauth

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test

class SmokeTest {
    @Test
    fun `a fresh token sends`() {
        Coordinator(Config()).use { core ->
            core.login(0, Credentials("at-1", "rt-1", null))
            val submitted = core.submit(1, RequestOptions())
            val send = submitted.commands.single() as Command.Send
            assertEquals("at-1", send.accessToken.expose())
        }
    }
}
