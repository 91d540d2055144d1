import Depot
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// One element of an XML document, with the line it was read on: the small tree the Synapse
/// importer reads (Foundation's `XMLDocument` keeps no line numbers).
public struct XMLElementNode: Sendable, Equatable {
    /// The local name (`messageStore`), without a prefix.
    public var name: String
    /// The namespace URI, or nil for none.
    public var namespace: String?
    /// The name as written (`int:channel`).
    public var qualifiedName: String
    public var attributes: [String: String]
    /// The element's own text (not its children's), trimmed.
    public var text: String
    public var children: [XMLElementNode]
    /// The line the start tag was read on (libxml2 reports where the tag ends).
    public var line: Int

    /// The first child called `name`.
    public func child(_ name: String) -> XMLElementNode? { children.first { $0.name == name } }
}

/// Why an XML file could not be read: the file, the line and column, and what is wrong there.
public struct MalformedXML: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var reason: String
    public var description: String { "\(file):\(line):\(column): malformed XML: \(reason)" }
}

/// Parses a document into an `XMLElementNode` tree with `XMLParser` (namespaces resolved).
public enum XMLElementTree {
    /// The document's root element. Throws `MalformedXML` naming `file` and the line.
    public static func parse(_ data: Data, file: String) throws -> XMLElementNode {
        let parser = XMLParser(data: data)
        parser.shouldProcessNamespaces = true
        parser.shouldReportNamespacePrefixes = false
        parser.shouldResolveExternalEntities = false
        let builder = TreeBuilder()
        parser.delegate = builder
        let parsed = parser.parse()
        if let deep = builder.tooDeep {
            throw MalformedXML(file: file, line: deep.line, column: deep.column,
                               reason: "elements are nested more than \(TreeBuilder.maximumDepth) deep; a Synapse configuration needs a few levels")
        }
        if let undeclared = builder.undeclaredPrefix {
            throw MalformedXML(file: file, line: undeclared.line, column: undeclared.column,
                               reason: "namespace prefix \"\(undeclared.prefix)\" is used without being declared (add xmlns:\(undeclared.prefix)=\"…\")")
        }
        if !parsed || builder.root == nil {
            let code = (parser.parserError as NSError?)?.code ?? builder.errorCode ?? 0
            throw MalformedXML(file: file, line: builder.errorLine ?? parser.lineNumber, column: builder.errorColumn ?? parser.columnNumber,
                               reason: builder.errorCode == nil && parsed ? "the file holds no XML element" : explain(code))
        }
        return builder.root!
    }

    /// A readable reason for an error code. The codes are libxml2's (`xmlParserErrors`), which
    /// Foundation reports on Linux as they are (its `XMLParser.ErrorCode` cases are numbered otherwise).
    static func explain(_ code: Int) -> String {
        switch code {
        case 76: "a closing tag does not match the element it closes"
        case 4, 5, 77: "the document ends before all its elements are closed"
        case 3: "the document does not start with an element"
        case 39, 40, 41, 75: "an attribute is not written name=\"value\""
        case 42: "an attribute is given twice"
        case 38: "an attribute value holds '<'; write &lt;"
        case 23, 24, 26, 27, 29: "an entity reference (&…;) is broken; write & as &amp;"
        case 201, 202, 203: "a namespace prefix is used without being declared"
        case 65, 68, 73, 74: "a tag is not well formed"
        case 86: "there is content after the root element; wrap several elements in <definitions>"
        case 9: "an invalid character"
        case 57, 64: "the <?xml …?> declaration is broken or not first"
        default: "not well-formed XML (libxml2 error \(code))"
        }
    }
}

/// Builds the tree from `XMLParser` callbacks.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [XMLElementNode] = []
    var texts: [String] = []
    var root: XMLElementNode?
    var errorLine: Int?
    var errorColumn: Int?
    var errorCode: Int?
    /// An element whose prefix has no xmlns declaration: libxml2 only warns, Foundation then
    /// reports a misleading error, so the builder stops at the element itself.
    var undeclaredPrefix: (prefix: String, line: Int, column: Int)?
    /// Where an element opened deeper than `maximumDepth`: the builder stops there. A tree
    /// 60,000 elements deep crashed the importer (its release recursed once per level).
    var tooDeep: (line: Int, column: Int)?
    static let maximumDepth = 256

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        guard stack.count < Self.maximumDepth else {
            tooDeep = (parser.lineNumber, parser.columnNumber)
            parser.abortParsing()
            return
        }
        let namespace = namespaceURI.flatMap { $0.isEmpty ? nil : $0 }
        if namespace == nil, let qName, let colon = qName.firstIndex(of: ":") {
            undeclaredPrefix = (String(qName[..<colon]), parser.lineNumber, parser.columnNumber)
            parser.abortParsing()
            return
        }
        stack.append(XMLElementNode(name: elementName, namespace: namespace, qualifiedName: qName ?? elementName,
                                    attributes: attributeDict, text: "", children: [], line: parser.lineNumber))
        texts.append("")
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !texts.isEmpty else { return }
        texts[texts.count - 1] += string
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        guard !texts.isEmpty else { return }
        texts[texts.count - 1] += String(decoding: CDATABlock, as: UTF8.self)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        guard var element = stack.popLast(), let text = texts.popLast() else { return }
        element.text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if stack.isEmpty {
            root = element
        } else {
            stack[stack.count - 1].children.append(element)
        }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
        guard errorLine == nil, undeclaredPrefix == nil, tooDeep == nil else { return }
        errorLine = parser.lineNumber
        errorColumn = parser.columnNumber
        errorCode = (parseError as NSError).code
    }
}
