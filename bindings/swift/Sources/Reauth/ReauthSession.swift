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
/// Every request waits for its command, goes out with `Authorization: Bearer …`, and on a
/// 401 waits for the one refresh and is replayed. The refresh runs on its own ephemeral
/// session; its answer is read by the shared host layer (`reauth-host`, contract §12.3:
/// 400/401 with an OAuth `error` → rejected; anything else → transient, with
/// `Retry-After`; a rotated refresh token in an unusable answer is kept). A request with
/// an `httpBodyStream` cannot be sent twice: a 401 hands it its response.
public final class ReauthSession: @unchecked Sendable {
    private let core: Coordinator
    private let session: URLSession
    private let tokenSession: URLSession
    private let endpoint: TokenEndpoint
    private let deadline: TimeInterval
    private let refreshStatuses: Set<Int32>
    private var closed = false
    private let store: CredentialStore
    private let onLogout: (@Sendable (LogoutReason) -> Void)?
    private let lock = NSRecursiveLock()
    private var waiters: [Int64: Waiter] = [:]
    private var timer: Task<Void, Never>?
    private var armedAt: Int64?
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
        core = try Coordinator(config: config)
        self.session = session
        tokenSession = URLSession(configuration: .ephemeral)
        endpoint = TokenEndpoint(url: tokenURL.absoluteString, clientId: clientID, clientSecret: clientSecret)
        deadline = TimeInterval(config.refreshTimeoutMs) / 1000
        refreshStatuses = Set(config.refreshStatuses ?? [401])
        self.store = store
        self.onLogout = onLogout
        if let credentials {
            try login(credentials)
        } else if let stored = store.load() {
            let restored = try stored.credentials()
            try apply { now in try self.core.login(now: now, credentials: restored) }
        }
    }

    deinit { timer?.cancel() }

    /// The coordinator's counters.
    public func stats() throws -> Stats { try core.stats() }

    /// Ends the session: waiting requests fail, the store is cleared, `onLogout` runs.
    public func logout() throws { try apply { now in try self.core.logout(now: now) } }

    /// Starts (or replaces) the session; the credentials are stored only once the
    /// coordinator accepted them (refused ones throw and change nothing).
    public func login(_ credentials: Credentials) throws {
        lock.lock(); defer { lock.unlock() }
        try apply { now in try self.core.login(now: now, credentials: credentials) }
        store.save(StoredCredentials(try storedFromLogin(credentials: credentials, wallNowMs: wallMs())))
    }

    /// Ends every request waiting for a token (they throw `ReauthClosed`); later requests
    /// throw it at once. The session and the store are kept.
    public func close() {
        lock.lock(); defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        for waiter in waiters.values where !waiter.done {
            waiter.done = true
            _ = try? core.cancel(now: clockMs(), id: waiter.id)
            waiter.continuation.yield(.closed)
            waiter.continuation.finish()
        }
        waiters = [:]
        timer?.cancel()
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
        let waiter = try submit(chosen)
        var last: (Data, URLResponse)?
        do {
            for await event in waiter.events {
                switch event {
                case .send(let token):
                    var sent = request
                    sent.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
                    let result = try await session.data(for: sent)
                    last = result
                    let http = result.1 as? HTTPURLResponse
                    let status = Int32(http?.statusCode ?? 200)
                    let challenges = http?.value(forHTTPHeaderField: "WWW-Authenticate").map { [$0] } ?? []
                    if refreshStatuses.contains(status), isCallersAnswer(wwwAuthenticate: challenges) {
                        // §12.4: insufficient_scope — the caller's answer, no refresh.
                        finishAsCallersAnswer(waiter)
                        return result
                    }
                    // On the wire when `close()` ran: its response is dropped, as in every adapter.
                    if isClosed() { throw ReauthClosed() }
                    try apply { now in try self.core.handleResponse(now: now, id: waiter.id, status: status) }
                case .complete:
                    if let last { return last }
                    throw RequestFailed(reason: .unauthorized)
                case .fail(let reason):
                    if reason == .unauthorized, let last { return last }
                    throw RequestFailed(reason: reason)
                case .closed:
                    throw ReauthClosed()
                }
            }
            throw CancellationError()
        } catch {
            abandon(waiter) // a transport error (rule 7.17) or a cancelled task
            throw error
        }
    }

    // MARK: routing: every core call and its batch under one lock

    private enum Event: Sendable {
        case send(String)
        case complete
        case fail(FailReason)
        case closed
    }

    private final class Waiter: @unchecked Sendable {
        let id: Int64
        let events: AsyncStream<Event>
        let continuation: AsyncStream<Event>.Continuation
        var done = false

        init(id: Int64) {
            self.id = id
            var c: AsyncStream<Event>.Continuation!
            events = AsyncStream { c = $0 }
            continuation = c
        }
    }

    private func clockMs() -> Int64 {
        Int64((DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000)
    }

    private func submit(_ options: RequestOptions) throws -> Waiter {
        lock.lock(); defer { lock.unlock() }
        if closed { throw ReauthClosed() }
        let now = clockMs()
        let submitted = try core.submit(now: now, options: options)
        let waiter = Waiter(id: submitted.id)
        waiters[submitted.id] = waiter
        route(submitted.commands)
        return waiter
    }

    private func apply(_ input: (Int64) throws -> [Command]) throws {
        lock.lock(); defer { lock.unlock() }
        let now = clockMs()
        route(try input(now))
    }

    private func abandon(_ waiter: Waiter) {
        lock.lock(); defer { lock.unlock() }
        if !waiter.done {
            waiter.done = true
            if (try? core.isInFlight(id: waiter.id)) == true {
                try? apply { now in try self.core.handleTransportError(now: now, id: waiter.id) }
            } else {
                try? apply { now in try self.core.cancel(now: now, id: waiter.id) }
            }
        }
        waiters[waiter.id] = nil
        waiter.continuation.finish()
    }

    private func isClosed() -> Bool {
        lock.lock(); defer { lock.unlock() }
        return closed
    }

    /// Ends a request whose response is the caller's answer as it is (§12.4).
    private func finishAsCallersAnswer(_ waiter: Waiter) {
        lock.lock(); defer { lock.unlock() }
        if !waiter.done {
            waiter.done = true
            _ = try? core.cancel(now: clockMs(), id: waiter.id)
        }
        waiters[waiter.id] = nil
    }

    private func route(_ commands: [Command]) {
        for command in commands {
            switch command {
            case .send(let id, let token, _), .replay(let id, let token, _):
                tell(id, .send(token.expose()))
            case .complete(let id):
                tell(id, .complete)
            case .fail(let id, let reason):
                tell(id, .fail(reason))
            case .refresh(let attempt, let refreshToken):
                Task.detached { [weak self] in await self?.refresh(attempt: attempt, refreshToken: refreshToken) }
            case .storeCredentials:
                // Already in the store: refresh(attempt:) wrote it before reporting it.
                // Written again now, it could overwrite a sibling's newer rotation with a
                // spent refresh token (§12.2).
                break
            case .logout(let reason):
                store.clear()
                onLogout?(reason)
            }
        }
        rearm()
    }

    private func tell(_ id: Int64, _ event: Event) {
        guard let waiter = waiters[id] else { return } // its caller is gone
        if case .send = event {} else {
            waiter.done = true
            waiters[id] = nil
        }
        waiter.continuation.yield(event)
    }

    /// One timer, always at the core's next deadline.
    private func rearm() {
        let deadline = try? core.pollTimeout()
        guard deadline != armedAt else { return }
        armedAt = deadline
        timer?.cancel()
        guard let deadline else { timer = nil; return }
        let delay = UInt64(max(0, deadline - clockMs())) * 1_000_000
        timer = Task.detached { [weak self] in
            try? await Task.sleep(nanoseconds: delay)
            guard !Task.isCancelled, let self else { return }
            try? self.apply { now in try self.core.handleTimeout(now: now) }
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
            try? apply { now in try self.core.handleRefreshSucceeded(now: now, attempt: attempt, credentials: credentials) }
        } else {
            try? apply { now in try self.core.handleRefreshFailed(now: now, attempt: attempt, failure: failure) }
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
