// Numeric core: tensor kernels (Tensor/), layers (Layers/), the VAVL model (Model/), losses, optimizer.
