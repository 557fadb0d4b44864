// HDF5 handles and constants that are macros over global symbols, which Swift cannot
// import: each function returns exactly what the macro names.
#ifndef VAVL_CHDF5SHIMS_H
#define VAVL_CHDF5SHIMS_H

#include <hdf5.h>
#include <stddef.h>

// MARK: - HDF5
hid_t vavl_h5p_default(void);
hid_t vavl_h5s_all(void);
hid_t vavl_h5p_dataset_create(void);
hid_t vavl_h5p_file_access(void);
hid_t vavl_h5t_native_float(void);
hid_t vavl_h5t_native_double(void);
hid_t vavl_h5t_native_int64(void);
hid_t vavl_h5t_c_s1(void);
unsigned vavl_h5f_acc_rdonly(void);
unsigned vavl_h5f_acc_rdwr(void);
unsigned vavl_h5f_acc_trunc(void);
unsigned vavl_h5f_acc_excl(void);
hid_t vavl_h5e_default(void);
hsize_t vavl_h5s_unlimited(void);
/// Turns off HDF5's automatic error-stack printing; errors are reported by the
/// Swift wrapper, naming the file and object.
void vavl_h5_silence_errors(void);



/// `H5T_VARIABLE`: the size that marks a variable-length string type.
size_t vavl_h5t_variable(void);

#endif
