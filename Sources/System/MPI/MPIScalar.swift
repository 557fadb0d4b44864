import CMPI
import CMPIShims

/// An element type that MPI collectives can carry.
public protocol MPIScalar {
    static var mpiDatatype: MPI_Datatype { get }
}

extension Float: MPIScalar { public static var mpiDatatype: MPI_Datatype { vavl_mpi_float() } }
extension Double: MPIScalar { public static var mpiDatatype: MPI_Datatype { vavl_mpi_double() } }
extension Int64: MPIScalar { public static var mpiDatatype: MPI_Datatype { vavl_mpi_int64() } }
extension UInt8: MPIScalar { public static var mpiDatatype: MPI_Datatype { vavl_mpi_byte() } }
