// Misuse of the API stops with a message that names the shapes — in every build. Swift's own `precondition` and
// `preconditionFailure` drop their message in optimised (-O) builds ("Swift runtime failure: precondition failure"),
// and the README builds with -c release; these module-level versions shadow them inside Backprop and keep the text.

/// Stops the program with `message` (and the file and line) unless `condition` holds, in debug and release builds.
@usableFromInline @inline(__always)
func precondition(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = String(),
                  file: StaticString = #file, line: UInt = #line) {
    if _slowPath(!condition()) { fatalError(message(), file: file, line: line) }
}

/// Stops the program with `message`, in debug and release builds.
@usableFromInline
func preconditionFailure(_ message: @autoclosure () -> String = String(), file: StaticString = #file,
                         line: UInt = #line) -> Never {
    fatalError(message(), file: file, line: line)
}
