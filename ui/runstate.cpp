// The comparison's state and the auto-run rule (see runstate.h).
#include "ui/runstate.h"

#include <QTimer>

namespace dlui {

QString run_key(const QString& inputsKey, const dl::PruneConfig& c) {
    return inputsKey + QChar(0x1f) +
           QString::fromStdString(c.label() + "|" + std::to_string(c.pivots_image) + "|" +
                                  std::to_string(c.pivots_text) + "|" + c.pivot_criterion + "|" + c.pivot_order +
                                  "|" + c.fastv_score + "|" + std::to_string(c.ratio));
}

RunState::RunState(QObject* parent) : QObject(parent) {
    m_timer = new QTimer(this);
    m_timer->setSingleShot(true);
    // checked again when it fires: a run may have made everything current meanwhile
    connect(m_timer, &QTimer::timeout, this, [this] {
        if (autoRunAllowed() && needsRun()) emit autoRunDue();
    });
}

// --- controls -------------------------------------------------------------------------------

QString RunState::staleSignature() const {
    QString s;
    for (const QString& m : m_methods) s += m + (isCurrent(m) ? "+" : isStale(m) ? "~" : "-");
    return s;
}

void RunState::setControls(const QStringList& methods, const QMap<QString, QString>& keys) {
    const QString before = staleSignature();
    m_methods = methods;
    m_keys = keys;
    if (staleSignature() != before) emit answersChanged();
}

void RunState::controlsChanged(bool interacting) {
    m_interacting = interacting;
    if (!interacting && autoRunAllowed() && needsRun()) {
        scheduleAutoRun();
        return;
    }
    if (!interacting) m_timer->stop();  // nothing to regenerate, or not allowed to
    if (needsRun() && hasRuns()) emit staleAnswersKept();
}

void RunState::interactionFinished() {
    m_interacting = false;
    scheduleAutoRun(0);
}

void RunState::scheduleAutoRun(int delayMs) {
    if (m_interacting || !autoRunAllowed() || !needsRun()) return;
    m_timer->start(delayMs >= 0 ? delayMs : m_delayMs);
}

void RunState::cancelAutoRun() { m_timer->stop(); }

bool RunState::autoRunPending() const { return m_timer->isActive(); }

void RunState::setAutoRunThresholdMs(int ms) {
    m_thresholdMs = ms;
    if (!autoRunAllowed()) m_timer->stop();
}

bool RunState::autoRunAllowed() const {
    return m_thresholdMs > 0 && m_lastRunMs >= 0 && m_lastRunMs < m_thresholdMs;
}

// --- results --------------------------------------------------------------------------------

void RunState::reset() {
    m_timer->stop();
    m_selections.clear();
    m_runs.clear();
    m_runKeys.clear();
    m_previewGen = m_runGen = 0;  // results of earlier requests belong to other inputs
    m_previewMethods.clear();
    m_runMethods.clear();
    m_runMethodKeys.clear();
    emit selectionsChanged();
    emit runsChanged();
    emit answersChanged();
}

void RunState::beginPreview(quint64 generation, const QStringList& methods) {
    m_previewGen = generation;
    m_previewMethods = methods;
}

bool RunState::previewArrived(quint64 generation, const QVector<dl::PruningResult>& results) {
    if (generation == 0 || generation != m_previewGen) return false;
    for (int i = 0; i < results.size() && i < m_previewMethods.size(); ++i) m_selections[m_previewMethods[i]] = results[i];
    emit selectionsChanged();
    return true;
}

void RunState::beginRun(quint64 generation, const QStringList& methods, bool cold) {
    m_timer->stop();
    m_runGen = generation;
    m_runMethods = methods;
    m_runMethodKeys.clear();
    for (const QString& m : methods) m_runMethodKeys << m_keys.value(m);  // what it is made with
    m_runIsCold = cold;
    m_runClock.start();
}

bool RunState::methodArrived(quint64 generation, int slot, const dl::MethodRun& run) {
    if (generation == 0 || generation != m_runGen || slot < 0 || slot >= m_runMethods.size()) return false;
    const QString method = m_runMethods[slot];
    m_runs[method] = run;
    // a run cancelled during decode shows its answer so far, never current: Run regenerates it
    m_runKeys[method] = run.cancelled ? QString() : m_runMethodKeys[slot];
    m_selections[method] = run.pruning;
    emit selectionsChanged();
    emit runsChanged();
    emit answersChanged();
    return true;
}

bool RunState::runArrived(quint64 generation) {
    if (generation == 0 || generation != m_runGen) return false;
    // what a change costs to regenerate (a cold measurement is not what an automatic run does)
    if (!m_runIsCold) m_lastRunMs = m_runClock.elapsed();
    m_runGen = 0;
    emit runFinished();
    // the controls moved while it ran: its answers are stale already
    scheduleAutoRun();
    return true;
}

QStringList RunState::methodsToRun(bool cold) const {
    QStringList out;
    for (const QString& m : m_methods)
        if (cold || !isCurrent(m)) out << m;
    return out;
}

const dl::PruningResult* RunState::selection(const QString& method) const {
    auto it = m_selections.find(method);
    return it == m_selections.end() ? nullptr : &it.value();
}

const dl::MethodRun* RunState::run(const QString& method) const {
    auto it = m_runs.find(method);
    return it == m_runs.end() ? nullptr : &it.value();
}

bool RunState::isCurrent(const QString& method) const {
    auto it = m_runKeys.find(method);
    return m_runs.contains(method) && it != m_runKeys.end() && !it->isEmpty() && *it == m_keys.value(method);
}

bool RunState::isStale(const QString& method) const {
    auto it = m_runs.find(method);
    return it != m_runs.end() && !it->cancelled && !isCurrent(method);
}

bool RunState::hasResults() const {
    for (const QString& m : m_methods)
        if (!isCurrent(m)) return false;
    return true;
}

bool RunState::countsInFigures(const QString& method) const {
    auto it = m_runs.find(method);
    return it != m_runs.end() && !it->cancelled;  // a cancelled run's timings are not the method's
}

}  // namespace dlui
