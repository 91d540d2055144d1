import DepotHTTP
import Foundation

extension IngressService {
    /// 202 `{"created":…,"held_in":…,"id":…}`, written by hand: JSONEncoder was the largest cost of
    /// the single-message route. The same JSON `.json` would give (sorted keys, nil left out).
    static func acceptedOne(id: String, created: Bool, heldIn: String?) -> HTTPResponse {
        var text = "{\"created\":\(created)"
        if let heldIn { text += ",\"held_in\":" + jsonString(heldIn) }
        text += ",\"id\":" + jsonString(id) + "}"
        return HTTPResponse(status: 202, headers: ["Content-Type": "application/json"], body: Data(text.utf8))
    }

    /// `text` as a JSON string literal.
    static func jsonString(_ text: String) -> String {
        // Ids and most store names need no escape: no scalar-by-scalar copy for them.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + text + "\""
        }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
