import Files
import DataSources
import Planner

/// Refuses a dataset the plan cannot run on, before any step: samples of another element type or
/// size than the plan's gather reads, or targets that are not the class labels its loss takes.
public func checkDataset(_ data: any Dataset, fits plan: Plan) throws {
    guard data.samples.element == plan.sampleElement else {
        throw RuntimeError.data(
            "\(data.origin): the samples are \(data.samples.element.rawValue) but the plan gathers \(plan.sampleElement.rawValue) samples")
    }
    guard data.features == plan.inputFeatures else {
        throw RuntimeError.data("\(data.origin): a sample has \(data.features) values but the model's input has \(plan.inputFeatures)")
    }
    switch data.targets {
    case .classes where plan.isRegression:
        throw RuntimeError.data("\(data.origin): the targets are class labels, but the plan's \(plan.loss.rawValue) loss takes target values")
    case .values where !plan.isRegression:
        throw RuntimeError.data("\(data.origin): the targets are values, but the plan's \(plan.loss.rawValue) loss takes class labels")
    case .values(_, let width) where width != plan.classes:
        throw RuntimeError.data("\(data.origin): a sample has \(width) target values but the model has \(plan.classes) outputs")
    default:
        break
    }
}
