/// A row-major matrix of `Float` on one unsafe buffer that grows but never shrinks, so the
/// activations of one training step reuse the memory of the previous one.
///
/// Dimension letters used in shape comments throughout the core:
/// N = rows of a packed ragged batch (all frames of all utterances), B = utterances,
/// T = frames of one utterance, C = channels, H = attention heads, D = head dimension,
/// K = kernel taps, O/I = output/input features of a linear map.
public final class Matrix {
    public private(set) var rows: Int
    public private(set) var columns: Int
    public private(set) var data: UnsafeMutablePointer<Float>
    private var capacity: Int

    /// A zero-filled `rows × columns` matrix.
    public init(rows: Int = 0, columns: Int = 0) {
        self.rows = rows
        self.columns = columns
        capacity = max(rows * columns, 1)
        data = FloatBuffer.allocateZeroed(count: capacity)
    }

    /// A matrix holding a copy of `values` (count must be `rows × columns`).
    public convenience init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "\(values.count) values for a \(rows) × \(columns) matrix")
        self.init(rows: rows, columns: columns)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { FloatBuffer.deallocate(data) }

    public var count: Int { rows * columns }

    /// Sets the shape; contents are unspecified afterwards (grows the buffer if needed).
    public func resize(rows: Int, columns: Int) {
        let needed = rows * columns
        if needed > capacity {
            FloatBuffer.deallocate(data)
            capacity = needed
            data = FloatBuffer.allocateZeroed(count: capacity)
        }
        self.rows = rows
        self.columns = columns
    }

    /// Sets the shape and zero-fills.
    public func resizeZeroed(rows: Int, columns: Int) {
        resize(rows: rows, columns: columns)
        zero()
    }

    public func zero() { data.update(repeating: 0, count: count) }

    /// Copies `other`'s shape and contents.
    public func copy(from other: Matrix) {
        resize(rows: other.rows, columns: other.columns)
        data.update(from: other.data, count: count)
    }

    public subscript(row: Int, column: Int) -> Float {
        get { data[row * columns + column] }
        set { data[row * columns + column] = newValue }
    }

    /// A pointer to the first element of `row`.
    @inline(__always) public func row(_ row: Int) -> UnsafeMutablePointer<Float> { data + row * columns }

    /// The contents as an array (tests and I/O).
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }
}
