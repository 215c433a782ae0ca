// A URLSession adapter for the reauth coordinator (hand-written; Reauth.swift next to it
// is generated). Not compiled on the project's Linux CI: see the package README.

import Foundation

/// The coordinator failed the request; `reason` says why.
public struct RequestFailed: Error, CustomStringConvertible {
    public let reason: FailReason
    public var description: String { "request failed: \(reason)" }
}

/// Where credentials live between refreshes and between runs (contract §12). Keep them in
/// the Keychain in an app; `MemoryStore` keeps them in this process. There is no
/// cross-process lock here: the refresh re-reads the store (§12.2, §12.3) but two
/// processes sharing one store are not serialised (an app extension needs one).
public protocol CredentialStore: AnyObject, Sendable {
    func load() -> StoredCredentials?
    func save(_ credentials: StoredCredentials)
    func clear()
}

/// Credentials as stored, with the expiry as wall-clock time (never the stated lifetime:
/// a monotonic clock does not survive a restart). `description` never shows the tokens.
public struct StoredCredentials: Sendable, Equatable, CustomStringConvertible {
    public let accessToken: String
    public let refreshToken: String?
    /// When the access token expires; `nil` if never.
    public let expiresAt: Date?

    public init(accessToken: String, refreshToken: String? = nil, expiresAt: Date? = nil) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.expiresAt = expiresAt
    }

    /// Credentials to log in with: the lifetime left, 0 if it passed (contract §12.1, in
    /// the shared host layer).
    public func credentials(now: Date = Date()) throws -> Credentials {
        try storedToCredentials(stored: record, wallNowMs: wallMs(now))
    }

    /// As the host layer reads it.
    var record: StoreRecord {
        StoreRecord(
            accessToken: Token(text: accessToken),
            refreshToken: refreshToken.map { Token(text: $0) },
            expiresAtMs: expiresAt.map { wallMs($0) })
    }

    /// What the host layer decided to store.
    init(_ record: StoreRecord) {
        self.init(
            accessToken: record.accessToken.expose(),
            refreshToken: record.refreshToken?.expose(),
            expiresAt: record.expiresAtMs.map { Date(timeIntervalSince1970: Double($0) / 1000) })
    }

    public var description: String {
        "StoredCredentials(accessToken: <redacted>, refreshToken: \(refreshToken == nil ? "nil" : "<redacted>"), expiresAt: \(String(describing: expiresAt)))"
    }
}

/// The wall clock in ms since the epoch, as the host layer takes it.
func wallMs(_ date: Date = Date()) -> Int64 {
    Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
}

/// `close()` was called: the request was not sent, or its wait ended.
public struct ReauthClosed: Error, CustomStringConvertible {
    public var description: String { "reauth is closed: the request was not sent" }
}

/// Credentials in this process only.
public final class MemoryStore: CredentialStore, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: StoredCredentials?

    public init(_ initial: StoredCredentials? = nil) { stored = initial }

    public func load() -> StoredCredentials? { lock.lock(); defer { lock.unlock() }; return stored }
    public func save(_ credentials: StoredCredentials) { lock.lock(); stored = credentials; lock.unlock() }
    public func clear() { lock.lock(); stored = nil; lock.unlock() }
}

/// Token refresh for URLSession: `try await reauth.data(for: request)` instead of
/// `session.data(for: request)`.
///
/// ```swift
/// let reauth = try ReauthSession(
///     tokenURL: URL(string: "https://auth.example.com/oauth/token")!,
///     clientID: "my-app",
///     credentials: try Credentials(accessToken: access, refreshToken: refresh, expiresInMs: 3_600_000),
///     onLogout: { reason in showLogin(reason) })
/// let (data, response) = try await reauth.data(for: URLRequest(url: meURL))
/// ```
///
/// Every request gets its command from the shared host driver (`reauth-host`: which
/// waiting request gets which command, RFC 6750 challenges, `close()`), goes out with
/// `Authorization: Bearer …`, and on a 401 waits for the one refresh and is replayed. Each
/// event is one call into native code returning one number (the step packed as
/// `reauth_host::wire` documents). The refresh runs on its own ephemeral session; its
/// answer is read by the shared host layer (contract §12.3: 400/401 with an OAuth `error`
/// → rejected; anything else → transient, with `Retry-After`; a rotated refresh token in
/// an unusable answer is kept). A request with an `httpBodyStream` cannot be sent twice: a
/// 401 hands it its response.
public final class ReauthSession: @unchecked Sendable {
    private let handle: UInt64
    private let session: URLSession
    private let tokenSession: URLSession
    private let endpoint: TokenEndpoint
    private let deadline: TimeInterval
    private let refreshStatuses: Set<Int32>
    private let store: CredentialStore
    private let onLogout: (@Sendable (LogoutReason) -> Void)?
    /// Guards the mailbox, the token held and the timer: map operations only, never a
    /// native call, the store, the network or `onLogout`.
    private let lock = NSLock()
    private let rearming = NSLock()
    private var waiting: [Int64: CheckedContinuation<Event, Never>] = [:]
    private var early: [Int64: Event] = [:]
    private var held: (generation: Int64, token: String?) = (0, nil)
    private var timer: Task<Void, Never>?
    private let started = DispatchTime.now()

    public init(
        tokenURL: URL,
        clientID: String,
        clientSecret: String? = nil,
        credentials: Credentials? = nil,
        store: CredentialStore = MemoryStore(),
        config: Config = Config(),
        session: URLSession = .shared,
        onLogout: (@Sendable (LogoutReason) -> Void)? = nil
    ) throws {
        handle = try driverNew(config: config)
        self.session = session
        tokenSession = URLSession(configuration: .ephemeral)
        endpoint = TokenEndpoint(url: tokenURL.absoluteString, clientId: clientID, clientSecret: clientSecret)
        deadline = TimeInterval(config.refreshTimeoutMs) / 1000
        refreshStatuses = Set(config.refreshStatuses ?? [401])
        self.store = store
        self.onLogout = onLogout
        do {
            if let credentials {
                try login(credentials)
            } else if let stored = store.load() {
                let restored = try stored.credentials()
                step(try driverLogin(handle: handle, now: clockMs(), credentials: restored))
            }
        } catch {
            _ = try? driverClose(handle: handle, now: clockMs())
            driverFree(handle: handle)
            throw error
        }
    }

    deinit {
        timer?.cancel()
        _ = try? driverClose(handle: handle, now: clockMs())
        driverFree(handle: handle)
    }

    /// The coordinator's counters.
    public func stats() throws -> Stats { try driverStats(handle: handle) }

    /// Ends the session: waiting requests fail, the store is cleared, `onLogout` runs.
    public func logout() throws { step(try closedToo { try driverLogout(handle: handle, now: clockMs()) }) }

    /// Starts (or replaces) the session; the credentials are stored only once the
    /// coordinator accepted them (refused ones throw and change nothing).
    public func login(_ credentials: Credentials) throws {
        step(try closedToo { try driverLogin(handle: handle, now: clockMs(), credentials: credentials) })
        store.save(StoredCredentials(try storedFromLogin(credentials: credentials, wallNowMs: wallMs())))
    }

    /// Ends every request waiting for a token (they throw `ReauthClosed`); later requests
    /// throw it at once. The session and the store are kept.
    public func close() {
        if let packed = try? driverClose(handle: handle, now: clockMs()) { step(packed) }
        lock.lock()
        timer?.cancel()
        timer = nil
        lock.unlock()
    }

    /// Loads `request` as `URLSession.data(for:)` does, with the bearer token and refresh.
    /// `options` are the request's (`RequestOptions(refresh: false)` for a request whose
    /// refusal must not touch the session, or a `route: routeKey(name:)`); without a route,
    /// its route is its method, origin and path (contract §12.4).
    public func data(for request: URLRequest, options: RequestOptions? = nil) async throws -> (Data, URLResponse) {
        var chosen = options ?? RequestOptions(replayable: true, refresh: true, route: nil)
        if request.httpBodyStream != nil { chosen.replayable = false }
        if chosen.route == nil, let url = request.url {
            chosen.route = defaultRoute(
                method: request.httpMethod ?? "GET", scheme: url.scheme ?? "", hostName: url.host ?? "",
                port: url.port.map { Int32($0) }, path: url.path.isEmpty ? "/" : url.path)
        }
        let holding = heldToken()
        let packed = try closedToo {
            try driverSubmit(
                handle: handle, now: clockMs(), replayable: chosen.replayable, refresh: chosen.refresh,
                route: chosen.route ?? 0, known: holding.generation)
        }
        let id = packed >> 9
        var event = own(packed, holding)
        var last: (Data, URLResponse)?
        do {
            while true {
                let current: Event
                if let event { current = event } else { current = await wait(id) }
                switch current {
                case .send(let token):
                    var sent = request
                    sent.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
                    let result = try await session.data(for: sent)
                    last = result
                    let http = result.1 as? HTTPURLResponse
                    let status = Int32(http?.statusCode ?? 200)
                    let challenges = refreshStatuses.contains(status)
                        ? (http?.value(forHTTPHeaderField: "WWW-Authenticate").map { [$0] } ?? []) : []
                    let holdingNow = heldToken()
                    let reported = try closedToo { () throws -> Int64 in
                        if challenges.isEmpty {
                            return try driverResponse(
                                handle: handle, now: clockMs(), id: id, status: status, known: holdingNow.generation)
                        }
                        return try driverResponseChallenged(
                            handle: handle, now: clockMs(), id: id, status: status,
                            wwwAuthenticate: challenges, known: holdingNow.generation)
                    }
                    event = own(reported, holdingNow)
                case .complete, .callersAnswer:
                    // §12.4: an insufficient_scope refusal is the caller's answer as it is.
                    if let last { return last }
                    throw RequestFailed(reason: .unauthorized)
                case .fail(let reason):
                    if reason == .unauthorized, let last { return last }
                    throw RequestFailed(reason: reason)
                case .closed:
                    throw ReauthClosed()
                }
            }
        } catch {
            abandon(id) // a transport error (rule 7.17), a cancelled task; nothing if it ended
            throw error
        }
    }

    // MARK: steps: what the driver asks after each event

    private enum Event: Sendable {
        case send(String)
        case complete
        case fail(FailReason)
        case callersAnswer
        case closed
    }

    private static let failReasons = wireFailReasons()
    private static let logoutReasons = wireLogoutReasons()
    private static let moreBit: Int64 = 1 << 7
    private static let deadlineBit: Int64 = 1 << 8

    private func clockMs() -> Int64 {
        Int64((DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000)
    }

    private func heldToken() -> (generation: Int64, token: String?) {
        lock.lock(); defer { lock.unlock() }
        return held
    }

    /// `body`, with the driver's `Closed` as `ReauthClosed`.
    private func closedToo<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ReauthError {
            if case .Closed = error { throw ReauthClosed() }
            throw error
        }
    }

    /// Carries out a step about no request of the caller's.
    private func step(_ packed: Int64) {
        if packed & Self.moreBit != 0 { _ = more() }
        if packed & Self.deadlineBit != 0 { rearm() }
    }

    /// Carries out the step's other half; the request's own event (`nil`: it waits).
    private func own(_ packed: Int64, _ holding: (generation: Int64, token: String?)) -> Event? {
        let table: (own: Int64, tokens: [Int64: String])? = packed & Self.moreBit != 0 ? more() : nil
        if packed & Self.deadlineBit != 0 { rearm() }
        switch packed & 7 {
        case 0:
            return nil
        case 1:
            // The bytes carry the token when it is not the one passed in.
            guard let token = table.flatMap({ $0.tokens[$0.own] }) ?? holding.token else {
                return .fail(.notLoggedIn) // never: the wire promises the token
            }
            return .send(token)
        case 2:
            return .complete
        case 3:
            return .fail(Self.failReasons[Int((packed >> 3) & 15)])
        default:
            return .callersAnswer
        }
    }

    /// Reads this thread's step bytes and carries them out: the logout first (a caller
    /// who sees its request fail finds the session over), then wakes, then refreshes.
    private func more() -> (own: Int64, tokens: [Int64: String]) {
        let bytes = [UInt8](driverTakeMore())
        var at = 0
        func u8() -> UInt8 { defer { at += 1 }; return bytes[at] }
        func u16() -> Int { defer { at += 2 }; return Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32() -> Int { Int(u16()) | u16() << 16 }
        func u64() -> Int64 { Int64(bitPattern: UInt64(u32()) | UInt64(u32()) << 32) }
        func text() -> (Int64, String) {
            let number = u64()
            let length = u32()
            defer { at += length }
            return (number, String(decoding: bytes[at..<at + length], as: UTF8.self))
        }
        let ownGeneration = u64()
        let nTokens = u16()
        let nRefreshes = u16()
        let nWakes = u32()
        let logout = Int(u8())
        var tokens: [Int64: String] = [:]
        for _ in 0..<nTokens {
            let (generation, token) = text()
            tokens[generation] = token
        }
        let refreshes = (0..<nRefreshes).map { _ in text() }
        if let newest = tokens.keys.max() {
            lock.lock()
            if newest > held.generation { held = (newest, tokens[newest]) }
            lock.unlock()
        }
        if logout != 0 {
            let reason = Self.logoutReasons[logout - 1]
            store.clear()
            onLogout?(reason)
        }
        for _ in 0..<nWakes {
            let id = u64()
            let kind = u8()
            let code = Int(u8())
            let generation = u64()
            let event: Event
            switch kind {
            case 1: event = tokens[generation].map { .send($0) } ?? .fail(.notLoggedIn)
            case 2: event = .complete
            case 3: event = .fail(Self.failReasons[code])
            default: event = .closed
            }
            deliver(id, event)
        }
        for (attempt, refreshToken) in refreshes {
            let token = Token(text: refreshToken)
            Task.detached { [weak self] in await self?.refresh(attempt: attempt, refreshToken: token) }
        }
        return (ownGeneration, tokens)
    }

    private func deliver(_ id: Int64, _ event: Event) {
        lock.lock()
        guard let continuation = waiting.removeValue(forKey: id) else {
            early[id] = event // told to wait, not registered yet
            lock.unlock()
            return
        }
        lock.unlock()
        continuation.resume(returning: event)
    }

    /// The wake of a request told to wait (it may have come already).
    private func wait(_ id: Int64) async -> Event {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let event = early.removeValue(forKey: id) {
                lock.unlock()
                continuation.resume(returning: event)
            } else {
                waiting[id] = continuation
                lock.unlock()
            }
        }
    }

    /// Ends a request its caller gave up on: a transport error in flight, a cancel
    /// waiting, nothing if it ended already.
    private func abandon(_ id: Int64) {
        lock.lock()
        waiting[id] = nil
        early[id] = nil
        lock.unlock()
        if let packed = try? driverAbandon(handle: handle, now: clockMs(), id: id) { step(packed) }
    }

    /// One timer, at the driver's next deadline (read again whenever a step moved it).
    /// `rearming` is held across that one native read so that two re-arms cannot leave
    /// the older deadline armed; no request takes it in the steady state.
    private func rearm() {
        rearming.lock(); defer { rearming.unlock() }
        let deadline = try? driverDeadline(handle: handle)
        lock.lock(); defer { lock.unlock() }
        timer?.cancel()
        guard let deadline = deadline ?? nil else { timer = nil; return }
        let delay = UInt64(max(0, deadline - clockMs())) * 1_000_000
        timer = Task.detached { [weak self] in
            try? await Task.sleep(nanoseconds: delay)
            guard !Task.isCancelled, let self else { return }
            if let packed = try? driverTimeout(handle: self.handle, now: self.clockMs()) {
                if packed & Self.moreBit != 0 { _ = self.more() }
            }
            self.rearm()
        }
    }

    private func save(_ credentials: Credentials) {
        if let record = try? storedFromLogin(credentials: credentials, wallNowMs: wallMs()) {
            store.save(StoredCredentials(record))
        }
    }

    // MARK: the token endpoint, read by the shared host layer (contract §12.2, §12.3)

    private func refresh(attempt: Int64, refreshToken: Token) async {
        var credentials: Credentials?
        var failure = RefreshFailure.transient(retryAfterMs: nil)
        do {
            var plan = try planRefresh(refreshToken: refreshToken, stored: store.load()?.record, wallNowMs: wallMs())
            var followed = false
            attempts: while true {
                switch plan {
                case .adopt(let adopted):
                    credentials = adopted
                    break attempts
                case .call(let sent):
                    switch await call(sent) {
                    case .succeeded(let received, _):
                        credentials = received
                        break attempts
                    case .rejected:
                        if !followed, let next = try afterRejection(sent: sent, stored: store.load()?.record, wallNowMs: wallMs()) {
                            followed = true
                            plan = next
                            continue attempts
                        }
                        failure = .rejected
                        break attempts
                    case .transient(let retryAfterMs, _, let rotated):
                        if let rotated, let kept = try keepRotation(stored: store.load()?.record, rotated: rotated) {
                            store.save(StoredCredentials(kept))
                        }
                        failure = .transient(retryAfterMs: retryAfterMs)
                        break attempts
                    }
                }
            }
        } catch {
            credentials = nil
            failure = .transient(retryAfterMs: nil)
        }
        if let credentials {
            save(credentials)
            if let packed = try? driverRefreshSucceeded(handle: handle, now: clockMs(), attempt: attempt, credentials: credentials) {
                step(packed)
            }
        } else if let packed = try? driverRefreshFailed(handle: handle, now: clockMs(), attempt: attempt, failure: failure) {
            step(packed)
        }
    }

    /// One token-endpoint call: at most `maxTokenResponseBytes() + 1` bytes of its body are
    /// read, within the core's refresh deadline, and the host layer reads the answer.
    private func call(_ sent: Token) async -> TokenAnswer {
        let built = endpoint.refreshRequest(refreshToken: sent)
        guard let url = URL(string: built.url) else {
            return .transient(retryAfterMs: nil, problem: "token endpoint URL is invalid", rotatedRefreshToken: nil)
        }
        var request = URLRequest(url: url, timeoutInterval: deadline)
        request.httpMethod = "POST"
        for header in built.headers { request.setValue(header.value.expose(), forHTTPHeaderField: header.name) }
        request.httpBody = Data(built.body.expose().utf8)
        let limit = Int(maxTokenResponseBytes())
        let started = Date()
        do {
            let (bytes, response) = try await tokenSession.bytes(for: request)
            let http = response as? HTTPURLResponse
            var body = Data()
            do {
                for try await byte in bytes {
                    body.append(byte)
                    if body.count > limit { break }
                    if Date().timeIntervalSince(started) > deadline {
                        return .transient(retryAfterMs: nil, problem: "token response still arriving at the refresh deadline", rotatedRefreshToken: nil)
                    }
                }
            } catch {
                // The body broke off. A 200's bytes so far are still read: a rotation that
                // arrived before the cut is kept (contract §12.3).
                if http?.statusCode != 200 {
                    return .transient(retryAfterMs: nil, problem: "token response broke off", rotatedRefreshToken: nil)
                }
            }
            return try readTokenResponse(
                status: Int32(http?.statusCode ?? 0), retryAfter: http?.value(forHTTPHeaderField: "Retry-After"),
                body: body, sentRefreshToken: sent, wallNowMs: wallMs())
        } catch {
            return .transient(retryAfterMs: nil, problem: "token endpoint unreachable", rotatedRefreshToken: nil)
        }
    }
}

extension RefreshFailure: Error {}
