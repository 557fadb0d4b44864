import Foundation
@testable import VAVLCore
import XCTest

/// Large float buffers sit on 2 MiB boundaries with the kernel advised to back them with
/// huge pages; small ones are ordinary 64-byte-aligned allocations.
final class FloatBufferTests: XCTestCase {
    func testLargeBuffersAreHugePageAlignedZeroedAndWritable() {
        let count = 3 << 19  // 6 MiB of floats, not a multiple of 2 MiB's worth of rows
        let buffer = FloatBuffer.allocateZeroed(count: count)
        defer { FloatBuffer.deallocate(buffer) }
        let address = Int(bitPattern: buffer)
        if FloatBuffer.usesHugePages { XCTAssertEqual(address % FloatBuffer.hugePageBytes, 0) }
        XCTAssertEqual(address % 64, 0)
        XCTAssertTrue((0..<count).allSatisfy { buffer[$0] == 0 })
        for i in 0..<count { buffer[i] = Float(i % 97) }
        XCTAssertEqual(buffer[count - 1], Float((count - 1) % 97))
    }

    func testSmallBuffersAreCacheLineAligned() {
        for count in [1, 3, 1000, 100_000] {
            let buffer = FloatBuffer.allocateZeroed(count: count)
            XCTAssertEqual(Int(bitPattern: buffer) % 64, 0)
            XCTAssertEqual(buffer[count - 1], 0)
            FloatBuffer.deallocate(buffer)
        }
    }

    /// The mapping holding a large buffer is marked eligible for transparent huge pages,
    /// where the kernel allows them at all (THP mode not "never").
    func testLargeBuffersAreAdvisedAsHugePages() throws {
        guard FloatBuffer.usesHugePages,
              let mode = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8),
              !mode.contains("[never]") else { throw XCTSkip("transparent huge pages unavailable") }
        let matrix = Matrix(rows: 1024, columns: 1024)
        let address = UInt(bitPattern: Int(bitPattern: matrix.data))
        // FileHandle: /proc files report size 0, which String(contentsOfFile:) takes literally.
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/self/smaps"))
        let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        var inMapping = false, eligible: Bool?
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
                let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inMapping = bounds.count == 2 && bounds[0] <= address && address < bounds[1]
            } else if inMapping, fields.first == "THPeligible:" {
                eligible = fields.last == "1"
            }
        }
        XCTAssertEqual(eligible, true, "mapping of a 4 MiB matrix not eligible for huge pages")
    }

    func testMatrixGrowthGivesZeroedStorage() {
        let matrix = Matrix(rows: 2, columns: 3)
        matrix.data.update(repeating: 5, count: matrix.count)
        matrix.resize(rows: 600, columns: 600)
        XCTAssertTrue((0..<matrix.count).allSatisfy { matrix.data[$0] == 0 })
    }
}
