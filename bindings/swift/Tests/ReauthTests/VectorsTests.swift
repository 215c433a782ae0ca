// Every conformance transcript of tests/vectors, replayed through the Swift bindings, must
// give the batches the Rust core gives (the same check as the Rust, C, Python and Kotlin
// replayers). Runs with `swift test` after build-xcframework.sh, on a Mac.

import Foundation
import XCTest
@testable import Reauth

final class VectorsTests: XCTestCase {
    static let vectors: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tests/vectors")

    func testEveryTranscriptReplaysIdentically() throws {
        let files = try FileManager.default.contentsOfDirectory(at: Self.vectors, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        XCTAssertGreaterThanOrEqual(files.count, 30)
        for file in files {
            let transcript = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
            let mismatches = try replay(transcript)
            XCTAssertEqual(mismatches, [], "\(file.lastPathComponent):\n\(mismatches.joined(separator: "\n"))")
        }
    }

    func testTokensNeverShowInDescriptions() throws {
        let core = try Coordinator(config: Config())
        let credentials = try Credentials(accessToken: "at-SECRET", refreshToken: "rt-SECRET", expiresInMs: nil)
        _ = try core.login(now: 0, credentials: credentials)
        let sent = try core.submit(now: 1, options: RequestOptions())
        XCTAssertFalse("\(credentials) \(sent)".contains("SECRET"))
    }

    func testBadInputThrowsAndChangesNothing() throws {
        let core = try Coordinator(config: Config())
        XCTAssertThrowsError(try core.handleResponse(now: 1, id: 99, status: 200)) { error in
            guard case ReauthError.UnknownRequest(let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(message, "unknown request 99")
        }
        XCTAssertThrowsError(try core.handleTimeout(now: -1))
        XCTAssertEqual(try core.stats(), try Coordinator(config: Config()).stats())
    }

    // MARK: the replayer

    private func int64(_ value: Any?) -> Int64? {
        guard let number = value as? NSNumber else { return nil }
        // u64::MAX and friends: past the end of the clock either way.
        return number.doubleValue >= 9.2e18 ? Int64.max : number.int64Value
    }

    private func credentials(_ raw: [String: Any]) throws -> Credentials {
        try Credentials(accessToken: raw["access_token"] as! String,
                        refreshToken: raw["refresh_token"] as? String,
                        expiresInMs: int64(raw["expires_in_ms"]))
    }

    private func config(_ raw: [String: Any]?) -> Config {
        var c = Config()
        guard let raw else { return c }
        if let s = raw["refresh_statuses"] as? [NSNumber] { c.refreshStatuses = s.map { $0.int32Value } }
        if let v = int64(raw["expiry_skew_ms"]) { c.expirySkewMs = v }
        if let v = int64(raw["min_token_age_ms"]) { c.minTokenAgeMs = v }
        if let v = int64(raw["max_replays_per_request"]) { c.maxReplaysPerRequest = Int32(v) }
        if let w = raw["refresh_window"] as? [String: Any] {
            if let v = int64(w["max_refreshes"]) { c.refreshWindowMaxRefreshes = Int32(v) }
            if let v = int64(w["window_ms"]) { c.refreshWindowMs = v }
        }
        if let v = int64(raw["initial_backoff_ms"]) { c.initialBackoffMs = v }
        if let v = int64(raw["max_backoff_ms"]) { c.maxBackoffMs = v }
        if let v = int64(raw["max_retries"]) { c.maxRetries = Int32(v) }
        if let v = int64(raw["refresh_timeout_ms"]) { c.refreshTimeoutMs = v }
        if let v = int64(raw["max_pending"]) { c.maxPending = Int32(v) }
        if let v = int64(raw["max_wait_ms"]) { c.maxWaitMs = v }
        return c
    }

    private func apply(_ core: Coordinator, _ now: Int64, _ input: [String: Any]) throws -> (Int64?, [Command]) {
        switch input["type"] as? String {
        case "login": return (nil, try core.login(now: now, credentials: credentials(input["credentials"] as! [String: Any])))
        case "submit":
            let o = input["options"] as? [String: Any] ?? [:]
            let s = try core.submit(now: now, options: RequestOptions(
                replayable: o["replayable"] as? Bool ?? true, refresh: o["refresh"] as? Bool ?? true, route: int64(o["route"])))
            return (s.id, s.commands)
        case "response": return (nil, try core.handleResponse(now: now, id: int64(input["id"])!, status: Int32(int64(input["status"])!)))
        case "transport_error": return (nil, try core.handleTransportError(now: now, id: int64(input["id"])!))
        case "refresh_succeeded":
            return (nil, try core.handleRefreshSucceeded(now: now, attempt: int64(input["attempt"])!,
                                                         credentials: credentials(input["credentials"] as! [String: Any])))
        case "refresh_failed":
            let failure: RefreshFailure
            if let t = (input["failure"] as? [String: Any])?["transient"] {
                failure = .transient(retryAfterMs: int64((t as? [String: Any])?["retry_after_ms"]))
            } else {
                failure = .rejected
            }
            return (nil, try core.handleRefreshFailed(now: now, attempt: int64(input["attempt"])!, failure: failure))
        case "timeout": return (nil, try core.handleTimeout(now: now))
        case "cancel": return (nil, try core.cancel(now: now, id: int64(input["id"])!))
        case "force_refresh": return (nil, try core.forceRefresh(now: now))
        case "logout": return (nil, try core.logout(now: now))
        case "begin_restore": return (nil, try core.beginRestore(now: now))
        case "restore_failed": return (nil, try core.restoreFailed(now: now))
        default: throw NSError(domain: "replay", code: 2, userInfo: [NSLocalizedDescriptionKey: "unknown input \(input)"])
        }
    }

    private func snake(_ name: String) -> String {
        name.replacingOccurrences(of: "([a-z])([A-Z])", with: "$1_$2", options: .regularExpression).lowercased()
    }

    /// A command as a transcript writes it (with its token text: test data only).
    private func record(_ command: Command) -> NSDictionary {
        switch command {
        case .send(let id, let token, let generation):
            return ["type": "send", "id": id, "access_token": token.expose(), "generation": generation]
        case .replay(let id, let token, let generation):
            return ["type": "replay", "id": id, "access_token": token.expose(), "generation": generation]
        case .refresh(let attempt, let token):
            return ["type": "refresh", "attempt": attempt, "refresh_token": token.expose()]
        case .storeCredentials(let generation, let access, let refresh, let expiresIn, let expiresAt):
            return ["type": "store_credentials", "generation": generation, "access_token": access.expose(),
                    "refresh_token": refresh?.expose() ?? NSNull(), "expires_in_ms": expiresIn ?? NSNull(),
                    "expires_at": expiresAt ?? NSNull()]
        case .complete(let id):
            return ["type": "complete", "id": id]
        case .fail(let id, let reason):
            return ["type": "fail", "id": id, "reason": snake("\(reason)")]
        case .logout(let reason):
            return ["type": "logout", "reason": snake("\(reason)")]
        }
    }

    private func errorKind(_ error: Error) -> String {
        snake(String(String(describing: error).prefix { $0 != "(" }))
    }

    func replay(_ transcript: [String: Any]) throws -> [String] {
        let core = try Coordinator(config: config(transcript["config"] as? [String: Any]))
        var mismatches: [String] = []
        for (index, step) in (transcript["steps"] as! [[String: Any]]).enumerated() {
            let input = step["input"] as! [String: Any]
            var id: Int64?
            var commands: [Command] = []
            var error: String?
            do {
                (id, commands) = try apply(core, int64(step["at"])!, input)
            } catch let e as ReauthError {
                error = errorKind(e)
            }
            var expectedCommands: [NSDictionary] = []
            for c in step["expect"] as? [[String: Any]] ?? [] {
                var c = c
                if c["type"] as? String == "store_credentials" {
                    if c["expires_in_ms"] == nil { c["expires_in_ms"] = NSNull() }
                    if c["expires_at"] == nil { c["expires_at"] = NSNull() }
                }
                expectedCommands.append(c as NSDictionary)
            }
            var same = expectedCommands == commands.map(record) && (step["error"] as? String) == error
            if let expectedId = step["id"] { same = same && int64(expectedId) == id }
            if let expectedTimeout = step["timeout"] {
                same = same && int64(expectedTimeout) == (try core.pollTimeout())
            }
            if !same {
                mismatches.append("step \(index + 1): expected \(expectedCommands) error \(String(describing: step["error"])), actual \(commands.map(record)) error \(String(describing: error))")
            }
        }
        return mismatches
    }
}
