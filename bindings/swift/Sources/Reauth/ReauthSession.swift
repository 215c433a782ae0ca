// A URLSession adapter for the reauth coordinator (hand-written; Reauth.swift next to it
// is generated). Not compiled on the project's Linux CI: see the package README.

import Foundation

/// The coordinator failed the request; `reason` says why.
public struct RequestFailed: Error, CustomStringConvertible {
    public let reason: FailReason
    public var description: String { "request failed: \(reason)" }
}

/// Where credentials live between refreshes and between runs (contract §12). Keep them in
/// the Keychain in an app; `MemoryStore` keeps them in this process.
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

    /// Credentials to log in with: the lifetime left, 0 if it passed.
    public func credentials(now: Date = Date()) throws -> Credentials {
        let left = expiresAt.map { max(Int64(0), Int64(($0.timeIntervalSince(now) * 1000).rounded(.down))) }
        return try Credentials(accessToken: accessToken, refreshToken: refreshToken, expiresInMs: left)
    }

    public var description: String {
        "StoredCredentials(accessToken: <redacted>, refreshToken: \(refreshToken == nil ? "nil" : "<redacted>"), expiresAt: \(String(describing: expiresAt)))"
    }
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
/// session; token-endpoint answers are read as RFC 6749 §5.2 says (400/401 with an OAuth
/// `error` → rejected; anything else → transient, with `Retry-After`). A request with an
/// `httpBodyStream` cannot be sent twice: a 401 hands it its response.
public final class ReauthSession: @unchecked Sendable {
    private let core: Coordinator
    private let session: URLSession
    private let tokenSession: URLSession
    private let tokenURL: URL
    private let clientID: String
    private let clientSecret: String?
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
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.store = store
        self.onLogout = onLogout
        if let credentials {
            save(credentials)
            try apply { now in try self.core.login(now: now, credentials: credentials) }
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

    /// Loads `request` as `URLSession.data(for:)` does, with the bearer token and refresh.
    public func data(for request: URLRequest) async throws -> (Data, URLResponse) {
        let replayable = request.httpBodyStream == nil
        let waiter = try submit(RequestOptions(replayable: replayable, refresh: true, route: nil))
        var last: (Data, URLResponse)?
        do {
            for await event in waiter.events {
                switch event {
                case .send(let token):
                    var sent = request
                    sent.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
                    let result = try await session.data(for: sent)
                    last = result
                    let status = Int32((result.1 as? HTTPURLResponse)?.statusCode ?? 200)
                    try apply { now in try self.core.handleResponse(now: now, id: waiter.id, status: status) }
                case .complete:
                    if let last { return last }
                    throw RequestFailed(reason: .unauthorized)
                case .fail(let reason):
                    if reason == .unauthorized, let last { return last }
                    throw RequestFailed(reason: reason)
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
        let now = clockMs()
        let submitted = try core.submit(now: now, options: options)
        let waiter = Waiter(id: submitted.id)
        waiters[submitted.id] = waiter
        route(submitted.commands, now: now)
        return waiter
    }

    private func apply(_ input: (Int64) throws -> [Command]) throws {
        lock.lock(); defer { lock.unlock() }
        let now = clockMs()
        route(try input(now), now: now)
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

    private func route(_ commands: [Command], now: Int64) {
        for command in commands {
            switch command {
            case .send(let id, let token, _), .replay(let id, let token, _):
                tell(id, .send(token.expose()))
            case .complete(let id):
                tell(id, .complete)
            case .fail(let id, let reason):
                tell(id, .fail(reason))
            case .refresh(let attempt, let refreshToken):
                let token = refreshToken.expose()
                Task.detached { [weak self] in await self?.refresh(attempt: attempt, refreshToken: token) }
            case .storeCredentials(_, let accessToken, let refreshToken, _, let expiresAt):
                store.save(StoredCredentials(
                    accessToken: accessToken.expose(),
                    refreshToken: refreshToken?.expose(),
                    expiresAt: expiresAt.map { Date().addingTimeInterval(Double($0 - now) / 1000) }))
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
        store.save(StoredCredentials(
            accessToken: credentials.accessToken().expose(),
            refreshToken: credentials.refreshToken()?.expose(),
            expiresAt: credentials.expiresInMs().map { Date().addingTimeInterval(Double($0) / 1000) }))
    }

    // MARK: the token endpoint (RFC 6749 §6, §5.1, §5.2)

    private func refresh(attempt: Int64, refreshToken: String) async {
        var request = URLRequest(url: tokenURL)
        request.httpMethod = "POST"
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        var form = URLComponents()
        form.queryItems = [
            URLQueryItem(name: "grant_type", value: "refresh_token"),
            URLQueryItem(name: "refresh_token", value: refreshToken),
            URLQueryItem(name: "client_id", value: clientID),
        ] + (clientSecret.map { [URLQueryItem(name: "client_secret", value: $0)] } ?? [])
        request.httpBody = form.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B").data(using: .utf8)
        let outcome: Result<Credentials, RefreshFailure>
        do {
            let (data, response) = try await tokenSession.data(for: request)
            let http = response as? HTTPURLResponse
            outcome = Self.classify(status: http?.statusCode ?? 0, retryAfter: http?.value(forHTTPHeaderField: "Retry-After"), body: data)
        } catch {
            outcome = .failure(.transient(retryAfterMs: nil))
        }
        switch outcome {
        case .success(let credentials):
            save(credentials)
            try? apply { now in try self.core.handleRefreshSucceeded(now: now, attempt: attempt, credentials: credentials) }
        case .failure(let failure):
            try? apply { now in try self.core.handleRefreshFailed(now: now, attempt: attempt, failure: failure) }
        }
    }

    /// 200 with a bearer `access_token` → credentials; 400/401 with an OAuth `error` →
    /// rejected; anything else → transient, with the server's `Retry-After` (seconds).
    static func classify(status: Int, retryAfter: String?, body: Data) -> Result<Credentials, RefreshFailure> {
        let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        if status == 200 {
            guard let access = json?["access_token"] as? String,
                  ((json?["token_type"] as? String) ?? "bearer").lowercased() == "bearer"
            else { return .failure(.transient(retryAfterMs: nil)) }
            let refresh = json?["refresh_token"] as? String
            let lifetime = (json?["expires_in"] as? NSNumber).map { Int64(($0.doubleValue * 1000).rounded(.down)) }
            guard let credentials = try? Credentials(accessToken: access, refreshToken: refresh, expiresInMs: lifetime)
            else { return .failure(.transient(retryAfterMs: nil)) }
            return .success(credentials)
        }
        if status == 400 || status == 401, json?["error"] is String {
            return .failure(.rejected)
        }
        let seconds = retryAfter.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }
        return .failure(.transient(retryAfterMs: seconds.map { $0 * 1000 }))
    }
}

extension RefreshFailure: Error {}
