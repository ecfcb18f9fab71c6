import KernelInterface

/// This module's kernels. The file is shared by KernelsAVX512, KernelsAVX2 and KernelsPortable, so each
/// module exports its own table, pointing at its own compilation of the functions; `#fileID` starts
/// with the module's name, which says which instruction set the module was compiled for.
public let kernelSet = KernelSet(
    isa: KernelISA(kernelModuleName: String(#fileID.prefix(while: { $0 != "/" }))) ?? .portable,
    gatherRows: gatherRows,
    gatherFloatRows: gatherFloatRows,
    linearForward: linearForward,
    linearBackwardInput: linearBackwardInput,
    linearBackwardWeights: linearBackwardWeights,
    linearForwardShifted: linearForwardShifted,
    linearBackwardWeightsShifted: linearBackwardWeightsShifted,
    activationForward: activationForward,
    activationBackward: activationBackward,
    dropoutForward: dropoutForward,
    dropoutBackward: dropoutBackward,
    softmaxCrossEntropy: softmaxCrossEntropy,
    meanSquaredError: meanSquaredError,
    sgdStep: sgdStep,
    adamStep: adamStep,
    argmaxRows: argmaxRows,
    softmaxRows: softmaxRows,
    conv2dForward: conv2dForward,
    conv2dBackwardWeights: conv2dBackwardWeights,
    conv2dBackwardWeightsStride1: conv2dBackwardWeightsStride1,
    conv2dBackwardInput: conv2dBackwardInput,
    conv2dForwardDirect: conv2dForwardDirect,
    conv2dBackwardInputSampleLanes: conv2dBackwardInputSampleLanes,
    pool2dForward: pool2dForward,
    pool2dBackward: pool2dBackward,
    maxPool2dReluBackward: maxPool2dReluBackward,
    batchNormTraining: batchNormTraining,
    batchNormEvaluation: batchNormEvaluation,
    batchNormBackward: batchNormBackward,
    batchNormFold: batchNormFold,
    regressionLoss: regressionLoss,
    gatherTargetRows: gatherTargetRows)
