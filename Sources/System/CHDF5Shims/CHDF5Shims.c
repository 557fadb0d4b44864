#include "CHDF5Shims.h"

hid_t vavl_h5p_default(void) { return H5P_DEFAULT; }
hid_t vavl_h5s_all(void) { return H5S_ALL; }
hid_t vavl_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
hid_t vavl_h5p_file_access(void) { return H5P_FILE_ACCESS; }
hid_t vavl_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
hid_t vavl_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
hid_t vavl_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
hid_t vavl_h5t_c_s1(void) { return H5T_C_S1; }
unsigned vavl_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
unsigned vavl_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
unsigned vavl_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
unsigned vavl_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
hid_t vavl_h5e_default(void) { return H5E_DEFAULT; }
hsize_t vavl_h5s_unlimited(void) { return H5S_UNLIMITED; }
void vavl_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
size_t vavl_h5t_variable(void) { return H5T_VARIABLE; }
