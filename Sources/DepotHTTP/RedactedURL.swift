import Foundation

extension URL {
    /// The URL as errors, logs and `last_error` may show it: a user and password become `***`,
    /// every query value becomes `***` (its name stays), a fragment is dropped. Endpoint URLs
    /// carry secrets (`?token=…`, `user:password@`) that must not travel with a failure.
    public var redactedForDisplay: String {
        guard var components = URLComponents(url: self, resolvingAgainstBaseURL: false) else { return "(an unreadable URL)" }
        if components.user != nil || components.password != nil {
            components.user = "***"
            components.password = components.password == nil ? nil : "***"
        }
        if let items = components.queryItems {
            components.queryItems = items.map { URLQueryItem(name: $0.name, value: $0.value == nil ? nil : "***") }
        }
        components.fragment = nil
        return components.string ?? "(an unreadable URL)"
    }
}
