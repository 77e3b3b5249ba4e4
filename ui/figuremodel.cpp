// Per-method figures and their table model (see figuremodel.h).
#include "ui/figuremodel.h"

#include <QFont>

namespace dlui {

QVector<Figures> compute_figures(const QStringList& names, const QVector<dl::MethodRun>& runs) {
    QVector<Figures> out;
    const dl::MethodRun* base = nullptr;
    for (const dl::MethodRun& r : runs)
        if (r.config.method == "none") { base = &r; break; }
    for (int i = 0; i < runs.size(); ++i) {
        const dl::MethodRun& r = runs[i];
        Figures f;
        f.name = i < names.size() ? names[i] : QString::fromStdString(r.config.label());
        f.vision_ms = r.timing_ms.vision;
        f.prefill_ms = r.timing_ms.prefill;
        f.selection_ms = r.timing_ms.selection;
        f.decode_ms = r.timing_ms.decode;
        f.ttft_ms = r.timing_ms.ttft;
        f.total_ms = r.timing_ms.total;
        if (base && r.timing_ms.total > 0) f.speedup = base->timing_ms.total / r.timing_ms.total;
        if (base && r.timing_ms.ttft > 0) f.ttft_speedup = base->timing_ms.ttft / r.timing_ms.ttft;
        f.kept = r.pruning.kept_count;
        f.budget = r.pruning.budget;
        f.image_tokens = r.pruning.num_image_tokens;
        f.kv_cache_bytes = r.kv_cache_bytes;
        f.generated_tokens = int(r.output_ids.size());
        f.composed = r.from_prefix_cache;
        out.push_back(f);
    }
    return out;
}

QString format_bytes(int64_t bytes) {
    const double b = double(bytes);
    if (b >= 1024.0 * 1024 * 1024) return QString::number(b / (1024.0 * 1024 * 1024), 'f', 2) + " GiB";
    if (b >= 1024.0 * 1024) return QString::number(b / (1024.0 * 1024), 'f', 2) + " MiB";
    if (b >= 1024.0) return QString::number(b / 1024.0, 'f', 1) + " KiB";
    return QString::number(bytes) + " B";
}

QString kept_text(const dl::PruningResult& r) {
    QString s = QString("%1 / %2 kept").arg(r.kept_count).arg(r.num_image_tokens);
    if (r.method != "none" && r.budget != r.kept_count) s += QString(" (budget %1)").arg(r.budget);
    return s;
}

void FigureModel::setFigures(const QVector<Figures>& figures) {
    beginResetModel();
    m_figures = figures;
    endResetModel();
}

void FigureModel::setChair(int row, double chair) {
    if (row < 0 || row >= m_figures.size()) return;
    m_figures[row].chair = chair;
    emit dataChanged(index(row, Chair), index(row, Chair));
}

int FigureModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : m_figures.size(); }
int FigureModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant FigureModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= m_figures.size()) return {};
    const Figures& f = m_figures[index.row()];
    auto ms = [](double v) { return QString::number(v, 'f', 1); };
    if (role == Qt::TextAlignmentRole)
        return index.column() == Method ? int(Qt::AlignLeft | Qt::AlignVCenter) : int(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::UserRole) {  // raw numbers, for charts and tests
        switch (index.column()) {
            case Vision: return f.vision_ms;
            case Prefill: return f.prefill_ms;
            case Decode: return f.decode_ms;
            case TTFT: return f.ttft_ms;
            case Total: return f.total_ms;
            case Speedup: return f.speedup;
            case Kept: return f.kept;
            case KVCache: return qlonglong(f.kv_cache_bytes);
            case Tokens: return f.generated_tokens;
            case Chair: return f.chair;
            default: return f.name;
        }
    }
    const bool timing = index.column() >= Vision && index.column() <= Total;
    if (role == Qt::ToolTipRole && f.composed && (timing || index.column() == Speedup || index.column() == Method))
        return QString("Composed: vision and layers < K are the per-layer times measured when the prefix cache was "
                       "filled, added up; selection, layers ≥ K and decode were measured in this run. "
                       "Run ▸ Measure cold times every stage.");
    if (role == Qt::FontRole && f.composed && timing) {
        QFont font;
        font.setItalic(true);
        return font;
    }
    if (role != Qt::DisplayRole) return {};
    switch (index.column()) {
        case Method: return f.name;
        case Vision: return ms(f.vision_ms);
        case Prefill: return ms(f.prefill_ms);
        case Decode: return ms(f.decode_ms);
        case TTFT: return ms(f.ttft_ms);
        case Total: return ms(f.total_ms);
        case Speedup: return f.speedup > 0 ? QString::number(f.speedup, 'f', 2) + QString::fromUtf8("×") : QString("–");
        case Kept:
            return f.budget != f.kept ? QString("%1 / %2 (B=%3)").arg(f.kept).arg(f.image_tokens).arg(f.budget)
                                      : QString("%1 / %2").arg(f.kept).arg(f.image_tokens);
        case KVCache: return format_bytes(f.kv_cache_bytes);
        case Tokens: return f.generated_tokens;
        case Chair: return f.chair >= 0 ? QString::number(f.chair, 'f', 2) : QString("–");
        default: return {};
    }
}

QVariant FigureModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return QAbstractTableModel::headerData(section, orientation, role);
    static const char* names[] = {"method", "vision ms", "prefill ms", "decode ms", "TTFT ms", "total ms",
                                  "speedup", "image tokens kept", "KV cache", "new tokens", "CHAIR_i"};
    return section >= 0 && section < ColumnCount ? QString(names[section]) : QVariant();
}

}  // namespace dlui
